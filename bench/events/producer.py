#!/usr/bin/python3
# A stand-in for ansible-playbook in the events benchmark (bench/README.md): the server runs it as its
# Ansible:PlaybookCommand, exactly as it runs ansible-playbook (setsid, scrubbed environment, private run dir), and it
# feeds the run's event socket (OPSGATE_EVENTS_SOCKET) JSON lines as fast as it can, as the callback plugin would.
# Its "playbook" (first argument) is JSON, not a playbook:
#   {"source": "synthetic", "events": 300000, "delay": 1.0}
#   {"source": "replay", "file": "/abs/callback.jsonl", "events": 300000, "delay": 1.0}
# replay repeats real callback output (recorded from a real run, bench/events/callback.jsonl) up to `events` lines.
# All lines are built before it connects, so the measured part is the server taking them, not Python making them.
# With --sink FILE instead of the socket it writes to FILE (e.g. /dev/null): the producer's own rate, the baseline.
import json
import os
import socket
import sys
import time


def synthetic(n):
    # What a run over 1000 hosts looks like: a task_start, then one runner_ok per host (every 10th changed).
    hosts = ['web%04d.example.com' % i for i in range(1000)]
    out = []
    seq = 0
    task = 0
    while seq < n:
        task += 1
        seq += 1
        out.append(('{"name":"task %d","action":"ansible.builtin.command","uuid":"0242ac11-0002-%012d","seq":%d,"event":"task_start"}\n'
                    % (task, task, seq)).encode())
        for i, h in enumerate(hosts):
            if seq >= n:
                break
            seq += 1
            out.append(('{"host":"%s","task":"task %d","task_uuid":"0242ac11-0002-%012d","changed":%s,"seq":%d,"event":"runner_ok"}\n'
                        % (h, task, task, 'true' if i % 10 == 0 else 'false', seq)).encode())
    return out


def replay(path, n):
    with open(path, 'rb') as f:
        lines = [l if l.endswith(b'\n') else l + b'\n' for l in f.read().splitlines(keepends=True) if l.strip()]
    return [lines[i % len(lines)] for i in range(n)]


def main():
    args = sys.argv[1:]
    sink = None
    if args and args[0] == '--sink':
        sink, args = args[1], args[2:]
    with open(args[0], 'rb') as f:
        spec = json.loads(f.read())
    n = int(spec.get('events', 300000))
    lines = synthetic(n) if spec.get('source', 'synthetic') == 'synthetic' else replay(spec['file'], n)
    # Chunks of about 64 KiB, as the plugin's buffered socket file sends them.
    chunks, chunk, size = [], [], 0
    for l in lines:
        chunk.append(l)
        size += len(l)
        if size >= 65536:
            chunks.append(b''.join(chunk))
            chunk, size = [], 0
    if chunk:
        chunks.append(b''.join(chunk))
    total = sum(len(c) for c in chunks)
    time.sleep(float(spec.get('delay', 0)))
    if sink:
        out = open(sink, 'wb', buffering=0)
        send = out.write
    else:
        out = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        out.connect(os.environ['OPSGATE_EVENTS_SOCKET'])
        send = out.sendall
    start = time.monotonic()
    for c in chunks:
        send(c)
    elapsed = time.monotonic() - start
    out.close()
    print('producer: %d events, %d bytes in %.3f s: %.0f events/s' % (len(lines), total, elapsed, len(lines) / max(elapsed, 1e-9)))


main()

# Opsgate's event callback for ansible-core 2.14: one JSON object per line, each with a sequence number, written
# to the Unix socket named by OPSGATE_EVENTS_SOCKET (the server listens on it inside the run's private 0700 dir).
# A socket, not stdout: stdout carries the human-readable output, which host data could shape into fake events.
# Only what a person needs is sent (host, task, changed, messages); whole module results are not, since they can
# hold anything. Results marked no_log are censored here the way ansible's own output censors them.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = '''
    name: opsgate_events
    type: notification
    short_description: JSON-lines events for Opsgate
    description: Writes one JSON object per event to the Unix socket in OPSGATE_EVENTS_SOCKET.
    requirements:
      - enabled in configuration (ANSIBLE_CALLBACKS_ENABLED=opsgate_events)
'''

import json
import os
import signal
import socket
import threading
import time

from ansible.plugins.callback import CallbackBase

CENSORED = 'the output has been hidden due to the fact that \'no_log: true\' was specified for this result'
MAX_TEXT = 4096


def _text(value):
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            value = json.dumps(value, sort_keys=True, default=str)
        except Exception:
            value = str(value)
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + '...'


def _flag(value):
    # A task attribute as the task holds it: a bool, or a string when it was templated.
    if isinstance(value, str):
        return value.strip().lower() in ('true', 'yes', 'on', '1')
    return bool(value)


def _rescued(task):
    # True when a failure of this task goes to a rescue section: the task (or a block around it) is in the main
    # part of a block that has one. ansible counts such a host as rescued, not failed, in its PLAY RECAP.
    node = task
    parent = getattr(task, '_parent', None)
    for _ in range(100):
        if parent is None:
            return False
        main = getattr(parent, 'block', None)
        if isinstance(main, list) and getattr(parent, 'rescue', None):
            uuid = getattr(node, '_uuid', None)
            if any(getattr(t, '_uuid', None) == uuid for t in main):
                return True
        node, parent = parent, getattr(parent, '_parent', None)
    return False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'opsgate_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._seq = 0
        self._out = None
        self._sock = None
        # Set before this side ends the stream, so the watcher tells a normal end from the server going away.
        self._done = False
        path = os.environ.get('OPSGATE_EVENTS_SOCKET')
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            self._sock = sock
            self._out = sock.makefile('wb', buffering=65536)
            watch = threading.Thread(target=self._watch_server, name='opsgate-server-watch')
            watch.daemon = True
            watch.start()

    def _watch_server(self):
        # The server never writes to the socket; it closes it only after ansible-playbook has exited (it waits for
        # the process, then drains). So an end of stream while this run is still going means the server died (a
        # kill -9, a crash, the machine's OOM killer): nobody records this run any more, and the job will be marked
        # failed when it resumes, so the run stops itself instead of going on unseen. SIGTERM reaches the whole
        # process group (ansible-playbook leads it, started through setsid), SIGKILL follows if that was not enough.
        try:
            while self._sock.recv(4096):
                pass
        except OSError:
            pass
        if self._done:
            return
        try:
            os.killpg(os.getpgrp(), signal.SIGTERM)
            time.sleep(5)
            os.killpg(os.getpgrp(), signal.SIGKILL)
        except OSError:
            pass

    def _emit(self, kind, **data):
        if self._out is None:
            return
        self._seq += 1
        data['seq'] = self._seq
        data['event'] = kind
        self._out.write(json.dumps(data, separators=(',', ':'), default=str).encode('utf-8') + b'\n')
        # Flushed per event so the server sees progress live; the server batches on its side.
        self._out.flush()

    @staticmethod
    def _task(task):
        return {'name': task.get_name().strip(), 'action': task.action, 'uuid': task._uuid}

    def _result(self, kind, result, **extra):
        r = result._result
        data = {
            'host': result._host.get_name(),
            'task': result._task.get_name().strip(),
            'task_uuid': result._task._uuid,
            'changed': bool(r.get('changed', False)),
        }
        delegated = r.get('_ansible_delegated_vars')
        if delegated and delegated.get('ansible_host'):
            data['delegated_to'] = delegated.get('ansible_host')
        if r.get('_ansible_no_log'):
            data['censored'] = True
            if kind in ('runner_failed', 'runner_unreachable', 'item_failed'):
                data['message'] = CENSORED
        elif kind in ('runner_failed', 'runner_unreachable', 'item_failed'):
            data['message'] = _text(r.get('msg') or r.get('stderr') or r.get('reason') or r.get('exception') or 'failed')
            if r.get('rc') is not None:
                data['rc'] = r.get('rc')
        elif kind in ('runner_skipped', 'item_skipped'):
            if r.get('skip_reason'):
                data['message'] = _text(r.get('skip_reason'))
        elif 'msg' in r and result._task.action in ('debug', 'ansible.builtin.debug', 'assert', 'ansible.builtin.assert'):
            data['message'] = _text(r.get('msg'))
        if kind.startswith('item_'):
            data['item'] = CENSORED if r.get('_ansible_no_log') else _text(self._get_item_label(r))
        data.update(extra)
        self._emit(kind, **data)

    def v2_playbook_on_start(self, playbook):
        self._emit('playbook_start', playbook=os.path.basename(playbook._file_name))

    def v2_playbook_on_play_start(self, play):
        self._emit('play_start', play=play.get_name().strip(), play_uuid=play._uuid)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit('task_start', **self._task(task))

    def v2_playbook_on_handler_task_start(self, task):
        self._emit('handler_start', **self._task(task))

    def v2_playbook_on_no_hosts_matched(self):
        self._emit('no_hosts_matched')

    def v2_runner_on_ok(self, result):
        self._result('runner_ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        ignored = bool(ignore_errors)
        self._result('runner_failed', result, ignored=ignored, rescued=not ignored and _rescued(result._task))

    def v2_runner_on_skipped(self, result):
        self._result('runner_skipped', result)

    def v2_runner_on_unreachable(self, result):
        # ansible counts an unreachable host of a task with ignore_unreachable as ok and ignored, and goes on with it.
        self._result('runner_unreachable', result, ignored=_flag(getattr(result._task, 'ignore_unreachable', False)))

    def v2_runner_item_on_ok(self, result):
        self._result('item_ok', result)

    def v2_runner_item_on_failed(self, result):
        ignored = _flag(getattr(result._task, 'ignore_errors', False))
        self._result('item_failed', result, ignored=ignored, rescued=not ignored and _rescued(result._task))

    def v2_runner_item_on_skipped(self, result):
        self._result('item_skipped', result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            hosts[host] = {
                'ok': s['ok'], 'changed': s['changed'], 'failures': s['failures'], 'skipped': s['skipped'],
                'unreachable': s['unreachable'], 'rescued': s['rescued'], 'ignored': s['ignored'],
            }
        self._emit('stats', hosts=hosts)
        if self._out is not None:
            self._done = True
            self._out.close()
            self._out = None

namespace Opsgate.Server.Tests.Engine;

internal static partial class BadRunbooks
{
    public static TheoryData<BadRunbook> StepsAndOptions => new()
    {
        new("unknown step key", """
            name: demo
            steps:
              - name: a
                kind: noop
                retries: 3
            """, 5, "unknown key 'retries' in a step (allowed: name, kind, with, attempts, backoff, timeout)"),
        new("unknown option key", """
            name: demo
            options:
              timeout: 5m
              parallel: 2
            steps:
              - name: a
                kind: noop
            """, 4, "unknown key 'parallel' in options"),
        new("unknown step kind", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: b
                kind: k8s.scael
            """, 6, "step 'b' has an unknown kind 'k8s.scael' (known kinds: ansible.run, http.call, k8s.delete, k8s.restart, k8s.scale, k8s.wait, noop, notify.webhook, sleep)"),
        new("input the kind does not declare", """
            name: demo
            steps:
              - name: a
                kind: k8s.restart
                with:
                  cluster: c
                  namespace: n
                  name: web
                  replicas: 2
            """, 9, "k8s.restart takes no input 'replicas' (its inputs: cluster, namespace, name)"),
        new("required input missing", """
            name: demo
            steps:
              - name: a
                kind: k8s.delete
                with:
                  cluster: c
                  namespace: n
                  name: web
            """, 6, "step 'a' (k8s.delete) needs input 'kind'"),
        new("required input missing and no with at all", """
            name: demo
            steps:
              - name: nap
                kind: sleep
            """, 3, "step 'nap' (sleep) needs input 'duration'"),
        new("template naming an unknown parameter", """
            name: demo
            parameters:
              - name: ns
                type: string
            steps:
              - name: a
                kind: k8s.restart
                with:
                  cluster: c
                  namespace: "{{ params.ns }}"
                  name: "web-{{ params.app }}"
            """, 11, "{{ params.app }} names an unknown parameter 'app' (parameters: ns)"),
        new("template naming a later step", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ steps.b.outputs.id }}"
              - name: b
                kind: noop
            """, 6, "{{ steps.b.outputs.id }} must name an earlier step: step 'b' runs after 'a'"),
        new("template naming the step itself", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ steps.a.outputs.id }}"
            """, 6, "a step cannot use its own outputs"),
        new("template naming no step", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: b
                kind: http.call
                with:
                  url: http://x
                  headers:
                    X-Id: "{{ steps.c.outputs.id }}"
            """, 10, "{{ steps.c.outputs.id }} must name an earlier step: there is no step 'c'"),
        new("malformed template", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ params }}"
            """, 6, "'{{ params }}' is not a template expression"),
        new("duplicate step", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: a
                kind: noop
            """, 5, "step name 'a' is used twice"),
        new("bad step timeout", """
            name: demo
            steps:
              - name: a
                kind: noop
                timeout: 5 minutes
            """, 5, "timeout must be a positive duration such as 250ms, 30s, 5m, 1h30m or 00:05:00, not '5 minutes'"),
        new("zero step timeout", """
            name: demo
            steps:
              - name: a
                kind: noop
                timeout: 0s
            """, 5, "timeout must be a positive duration"),
        new("bad backoff", """
            name: demo
            steps:
              - name: a
                kind: noop
                backoff: soon
            """, 5, "backoff must be a duration such as"),
        new("attempts zero", """
            name: demo
            steps:
              - name: a
                kind: noop
                attempts: 0
            """, 5, "attempts must be an integer between 1 and 100"),
        new("bad runbook timeout", """
            name: demo
            options:
              timeout: 30
            steps:
              - name: a
                kind: noop
            """, 3, "timeout must be a positive duration such as 250ms, 30s, 5m, 1h30m or 00:05:00, not '30'"),
        new("bad approval timeout", """
            name: demo
            options:
              requires_approval: true
              approval_timeout: tomorrow
            steps:
              - name: a
                kind: noop
            """, 4, "approval_timeout must be a positive duration"),
        new("bad role", """
            name: demo
            options:
              requires_approval: true
              approvers_role: boss
            steps:
              - name: a
                kind: noop
            """, 4, "approvers_role must be one of viewer, operator, approver, admin, not 'boss'"),
        new("approval settings without approval", """
            name: demo
            options:
              approvers_role: admin
            steps:
              - name: a
                kind: noop
            """, 3, "approvers_role has no effect without requires_approval: true"),
        new("requires_approval that is not a bool", """
            name: demo
            options:
              requires_approval: sometimes
            steps:
              - name: a
                kind: noop
            """, 3, "requires_approval must be true or false"),
        new("concurrency key using step outputs", """
            name: demo
            options:
              concurrency_key: "x/{{ steps.a.outputs.id }}"
            steps:
              - name: a
                kind: noop
            """, 3, "concurrency_key cannot use {{ steps.a.outputs.id }}"),
        new("concurrency key naming an unknown parameter", """
            name: demo
            options:
              concurrency_key: "{{ params.cluster }}/x"
            steps:
              - name: a
                kind: noop
            """, 3, "{{ params.cluster }} names an unknown parameter 'cluster' (the runbook has none)"),
        new("literal input of the wrong type", """
            name: demo
            steps:
              - name: a
                kind: k8s.scale
                with:
                  cluster: c
                  namespace: n
                  kind: statefulset
                  name: pg
                  replicas: many
            """, 10, "input 'replicas' of step 'a' must be an integer"),
        new("literal duration input that is not one", """
            name: demo
            steps:
              - name: a
                kind: sleep
                with:
                  duration: 10
            """, 6, "input 'duration' of step 'a' must be a duration"),
        new("literal null for a required input", """
            name: demo
            steps:
              - name: a
                kind: sleep
                with:
                  duration:
            """, 6, "input 'duration' of step 'a' is required"),
        new("step without kind", """
            name: demo
            steps:
              - name: a
                with: {}
            """, 3, "step 'a' needs 'kind'"),
    };
}

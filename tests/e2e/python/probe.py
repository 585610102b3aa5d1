"""Drives the official Kubernetes Python client through Custos and prints what it saw as one JSON object.

Usage: probe.py KUBECONFIG NAMESPACE POD  (POD serves an echo on port 8080, like the testbed's toolbox)

The Rust test (tests/e2e/tests/clients.rs) judges the output; this script only reports. A refused exec is
reported as `exec_error`; any other error fails the script (non-zero exit, traceback on stderr), so an
error through the gateway is never hidden.
"""

import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward, stream


def exec_ws(core, namespace, pod, command, **kwargs):
    """Runs a command in the pod over the client's WebSocket exec (v4.channel.k8s.io)."""
    return stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stderr=True,
        stdin=kwargs.pop("stdin", False),
        stdout=True,
        tty=False,
        **kwargs,
    )


def stdin_round_trip(core, namespace, pod, line):
    """Writes a line to a command's stdin and reads it back from its stdout (head, not cat: kwok's exec
    does not pass the end of stdin on)."""
    ws = exec_ws(core, namespace, pod, ["head", "-n1"], stdin=True, _preload_content=False)
    try:
        ws.write_stdin(line + "\n")
        out = ""
        while ws.is_open() and "\n" not in out:
            ws.update(timeout=5)
            out += ws.read_stdout(timeout=1) or ""
        return out
    finally:
        ws.close()


def split_channels(core, namespace, pod):
    """Runs a command that writes to both stdout and stderr; returns what arrived on each channel."""
    ws = exec_ws(
        core, namespace, pod, ["sh", "-c", "echo to-stdout; echo to-stderr >&2"], _preload_content=False
    )
    ws.run_forever(timeout=20)
    return {"stdout": ws.read_stdout(), "stderr": ws.read_stderr()}


def port_forward_echo(core, namespace, pod, port, payload):
    """Sends bytes to the pod's echo port over the client's WebSocket port-forward; returns the echo."""
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
    try:
        sock = pf.socket(port)
        sock.setblocking(True)
        sock.settimeout(15)
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        sock.close()
        return got.decode()
    finally:
        pf.close()


def main():
    kubeconfig, namespace, pod = sys.argv[1:4]
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    pods = core.list_namespaced_pod(namespace)
    report = {
        "server": client.Configuration.get_default_copy().host,
        "pods": sorted(p.metadata.name for p in pods.items),
    }
    try:
        report["exec"] = exec_ws(core, namespace, pod, ["sh", "-c", "echo python-exec-$((6*7))"])
    except ApiException as e:
        # A refused upgrade: the client puts the handshake status and the apiserver's Status body in
        # `reason`. The caller decides whether a refusal was expected.
        report["exec_error"] = {"status": e.status, "reason": e.reason}
    else:
        report["stdin"] = stdin_round_trip(core, namespace, pod, "python-through-stdin")
        report["channels"] = split_channels(core, namespace, pod)
        report["portforward"] = port_forward_echo(core, namespace, pod, 8080, b"python-port-forward\n")
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()

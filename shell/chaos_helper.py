"""The Python pieces of shell/chaos.sh (run with the test bed's Python).

    pty hangup|ctrlc RESULT GO LIMIT OUTFILE ARGV...
        Runs ARGV in a new pseudo-terminal (session leader, the pty its controlling
        terminal, in the foreground group, as a shell's job is), and writes the child's pid
        (its session id) to RESULT.pid. Once the file GO exists:
        `hangup` closes the master (the kernel sends SIGHUP to the session leader) and
        sends SIGHUP to the child's process group (what the user's shell does for each
        job), as tests/supervised.rs HUP_PY does; the child's stdout and stderr go to
        OUTFILE so that what it prints after the hang-up can be read. `ctrlc` types one
        Ctrl-C (0x03) on the master, as tests/supervised.rs PTY_PY does; the output goes
        through the pty and is copied to OUTFILE. Writes {"code", "faulted",
        "timed_out"} to RESULT when the child has exited (killed after LIMIT seconds).

    poll OUT STOP LIMIT
        A credential-endpoint client, from AWS_CONTAINER_CREDENTIALS_FULL_URI and
        AWS_CONTAINER_AUTHORIZATION_TOKEN in its environment, as an AWS SDK reads them.
        Asks every 0.2 s and appends one JSON line per request to OUT: {"at", "status",
        "key", "exp"}, with `at` the local clock when the answer arrived and `exp` the
        answer's Expiration (epoch seconds). Ignores SIGINT, SIGTERM and SIGHUP (it
        measures faults, it must survive them). Ends when the endpoint refuses
        connections after having answered (the run is over), when the file STOP exists,
        or after LIMIT seconds; its last line is {"done": REASON}.

    polled OUT
        Prints "REQUESTS SERVED EXPIRED NOT_SERVED" for a poll file: EXPIRED counts the
        200 answers whose Expiration was already past by the local clock when they
        arrived; NOT_SERVED counts the other answers (503, ...; not connection errors).

    relay PORT UPSTREAM_PORT
        A TCP relay from 127.0.0.1:PORT to 127.0.0.1:UPSTREAM_PORT: the "STS server" of
        the STS-outage trials. Killing it closes every connection through it at once
        (pooled keep-alive ones too) and refuses new ones: STS is unreachable. Started
        again on the same port, STS is back with every user, key and role intact, since
        they live in the bucket's moto behind it.

    s3 ENDPOINT KEY SECRET locks BUCKET      prints the `.tflock` keys, one a line
    s3 ENDPOINT KEY SECRET delete BUCKET KEY deletes one object

    interrupts FILE
        Prints "RECEIVED TWO" for a run's output: how many times terraform printed
        "Interrupt received" and whether it printed "Two interrupts received".
"""
import json
import os
import pty
import select
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime


def run_pty(mode, result, go, limit, outfile, argv):
    # hangup: the child writes OUTFILE itself; ctrlc: this process copies the pty there.
    captured = open(outfile, "wb")
    if mode == "hangup":
        captured.close()
        captured = None
    pid, fd = pty.fork()
    if pid == 0:
        try:
            if mode == "hangup":
                f = os.open(outfile, os.O_WRONLY | os.O_APPEND)
                os.dup2(f, 1)
                os.dup2(f, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    with open(result + ".pid", "w") as f:
        f.write(str(pid))
    faulted = False
    timed_out = False
    status = None
    exited_at = None
    deadline = time.monotonic() + limit
    while True:
        now = time.monotonic()
        if now > deadline:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if status is None:
                _, status = os.waitpid(pid, 0)
            break
        if not faulted and os.path.exists(go):
            faulted = True
            if mode == "hangup":
                os.close(fd)
                fd = None
                try:
                    os.killpg(pid, signal.SIGHUP)
                except ProcessLookupError:
                    pass
            else:
                os.write(fd, b"\x03")
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status, exited_at = st, now
        if status is not None and (fd is None or now - exited_at > 2):
            break
        if fd is None:
            time.sleep(0.1)
            continue
        r, _, _ = select.select([fd], [], [], 0.1)
        if fd in r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                if status is not None:
                    break
                time.sleep(0.1)
                continue
            if captured:
                captured.write(data)
                captured.flush()
    if captured:
        captured.close()
    with open(result, "w") as f:
        json.dump({"code": os.waitstatus_to_exitcode(status), "faulted": faulted, "timed_out": timed_out}, f)


def poll(out, stop, limit):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    end = time.time() + limit
    answered = False
    reason = "limit"
    with open(out, "a") as f:
        while True:
            if os.path.exists(stop):
                reason = "stop"
                break
            if time.time() > end:
                break
            rec = {}
            try:
                req = urllib.request.Request(uri, headers={"Authorization": token})
                with urllib.request.urlopen(req, timeout=10) as r:
                    body = json.load(r)
                rec["at"] = time.time()
                rec.update(status=200, key=body["AccessKeyId"],
                           exp=datetime.fromisoformat(body["Expiration"].replace("Z", "+00:00")).timestamp())
                answered = True
            except urllib.error.HTTPError as e:
                rec.update(at=time.time(), status=e.code)
                answered = True
            except (ConnectionRefusedError, urllib.error.URLError) as e:
                refused = isinstance(e, ConnectionRefusedError) or isinstance(getattr(e, "reason", None), ConnectionRefusedError)
                if refused and answered:
                    reason = "endpoint closed"
                    break
                rec.update(at=time.time(), status=0, error=str(e))
            except Exception as e:  # a reset or a half-written answer: recorded, not fatal
                rec.update(at=time.time(), status=0, error=str(e))
            f.write(json.dumps(rec) + "\n")
            f.flush()
            time.sleep(0.2)
        f.write(json.dumps({"done": reason}) + "\n")


def polled(out):
    requests = served = expired = not_served = 0
    try:
        lines = open(out).read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        r = json.loads(line)
        if "status" not in r:
            continue
        requests += 1
        if r["status"] == 200:
            served += 1
            if r["exp"] <= r["at"]:
                expired += 1
        elif r["status"] != 0:
            not_served += 1
    print(requests, served, expired, not_served)


def relay(port, upstream):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", upstream), timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        threading.Thread(target=pipe, args=(client, server), daemon=True).start()
        threading.Thread(target=pipe, args=(server, client), daemon=True).start()


def s3(endpoint, key, secret, op, bucket, *args):
    import boto3
    from botocore.config import Config

    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                     aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}))
    if op == "locks":
        for o in c.list_objects_v2(Bucket=bucket).get("Contents", []):
            if o["Key"].endswith(".tflock"):
                print(o["Key"])
    elif op == "delete":
        c.delete_object(Bucket=bucket, Key=args[0])
    else:
        raise SystemExit(f"unknown s3 op {op}")


def interrupts(path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except FileNotFoundError:
        text = ""
    print(text.count("Interrupt received"), 1 if "Two interrupts received" in text else 0)


def main():
    cmd, *a = sys.argv[1:]
    if cmd == "pty":
        run_pty(a[0], a[1], a[2], float(a[3]), a[4], a[5:])
    elif cmd == "poll":
        poll(a[0], a[1], float(a[2]))
    elif cmd == "polled":
        polled(a[0])
    elif cmd == "relay":
        relay(int(a[0]), int(a[1]))
    elif cmd == "s3":
        s3(*a)
    elif cmd == "interrupts":
        interrupts(a[0])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

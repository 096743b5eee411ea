#!/usr/bin/env python3
"""Host side of the real-Xen harness: reads QEMU's serial console.

Connects to the unix socket QEMU serves the serial port on (QEMU waits for
this connection before it starts the guest), timestamps every line, writes
all of them to LOG, echoes the harness's own lines ([e2e], PASS, FAIL,
RESULT) to stdout as they come, and stops on the end marker the dom0 script
prints, on a hypervisor or kernel panic, or after TIMEOUT seconds.

Exit status: 0 when dom0 printed "E2E-END rc=0"; 2 for any other rc (the
number of failed scenarios, or 124 from dom0's watchdog: the log has it;
passed through it would collide with the codes below); 3 on a panic; 4 on
a timeout; 5 when the console closed before the end marker; 6 when the
console stayed silent for SILENCE seconds (default 300). dom0 prints a
heartbeat every minute while a scenario is stalled, so silence means the
emulated machine itself stopped, not a scenario.
"""
import re
import socket
import sys
import time

ECHO = re.compile(r"^(\[e2e\]|PASS |FAIL |RESULT |TABLE |E2E-)")
PANIC = re.compile(r"Kernel panic|\(XEN\) Panic on CPU|\*\*\*\* Panic|BUG: unable to handle|general protection fault")


def main() -> int:
    path, log_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    silence = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
    start = time.monotonic()
    sock = None
    while sock is None:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
        except OSError:
            sock = None
            if time.monotonic() - start > 30:
                print(f"console: cannot connect to {path}", file=sys.stderr)
                return 5
            time.sleep(0.1)
    sock.settimeout(1.0)
    buffer = b""
    status = 5
    last_output = time.monotonic()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        while True:
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                print(f"[host] console: no end marker after {timeout:.0f} s", flush=True)
                return 4
            if time.monotonic() - last_output > silence:
                print(f"[host] console: silent for {silence:.0f} s; the emulated machine stopped",
                      flush=True)
                return 6
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return status
            last_output = time.monotonic()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", errors="replace").rstrip("\r")
                stamp = f"[{time.monotonic() - start:7.1f}]"
                log.write(f"{stamp} {line}\n")
                log.flush()
                if ECHO.match(line):
                    print(f"{stamp} {line}", flush=True)
                match = re.match(r"^E2E-END rc=(\d+)", line)
                if match:
                    return 0 if int(match.group(1)) == 0 else 2
                if PANIC.search(line) and not line.startswith("[e2e]"):
                    print(f"{stamp} [host] panic on the console: {line}", flush=True)
                    # Let the rest of the oops reach the log before stopping.
                    deadline = time.monotonic() + 3
                    while time.monotonic() < deadline:
                        try:
                            more = sock.recv(65536)
                        except socket.timeout:
                            break
                        if not more:
                            break
                        log.write(more.decode("utf-8", errors="replace"))
                    return 3


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

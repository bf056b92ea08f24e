"""A real `llamabatch serve` in a subprocess on a free loopback port, for the
server tests. Only ever 127.0.0.1."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Starts ``python -m llamabatch.cli serve ARGS``; :meth:`wait_ready` waits
    for /health; :meth:`stop` sends SIGTERM and returns the exit status. The
    server's log (stderr) goes to a file, read by :meth:`log`."""

    def __init__(self, *args: str, threads: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="llamabatch-serve-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "llamabatch.cli", "serve", "--host", HOST, "--port", str(self.port),
                   "--threads", str(threads), *args]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"the server was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """One sample of GET /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
        match = re.search(pattern, text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def stop(self, timeout: float = 60.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

"""A throwaway PostgreSQL 15 cluster on 127.0.0.1, built from the machine's server binaries.

`PostgresCluster.start()` runs `initdb` into a new temporary folder, starts the server with
`pg_ctl` on a free port of 127.0.0.1 with password authentication, and `stop()` stops it
(`pg_ctl stop`, then SIGTERM and SIGKILL to the postmaster's pid) and deletes the folder.

PostgreSQL refuses to run as root. Under root, every server command runs as the `postgres`
OS user through `runuser`, and the folder is handed to that user. Under any other user, the
commands run as that user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Debian's postgresql-15 package installs the server here.
DEFAULT_BIN_DIR = Path(os.environ.get("TAP_CONTINU_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


class PostgresUnavailableError(RuntimeError):
    """The server binaries or the OS user to run them are missing."""


def _find_binaries(bin_dir: Path) -> dict[str, Path]:
    binaries = {name: bin_dir / name for name in ("initdb", "pg_ctl", "postgres")}
    missing = [str(path) for path in binaries.values() if not os.access(path, os.X_OK)]
    if missing:
        msg = (
            f"PostgreSQL 15 server binaries not found: {', '.join(missing)}. Install Debian's "
            "postgresql-15 package (apt-get install postgresql-15), or set TAP_CONTINU_PG_BIN "
            "to the folder that holds initdb and pg_ctl."
        )
        raise PostgresUnavailableError(msg)
    return binaries


def _free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class PostgresCluster:
    """One PostgreSQL server with its own data folder, port and superuser password."""

    bin_dir: Path = DEFAULT_BIN_DIR
    root: Path | None = None
    port: int = 0
    password: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(18))
    pid: int | None = None
    # Default time zone of every session, the server's `timezone` setting.
    timezone: str = "UTC"

    host = "127.0.0.1"
    user = SUPERUSER
    database = "postgres"

    @property
    def data_dir(self) -> Path:
        """Folder of the cluster's files, inside `root`."""
        return self._root / "data"

    @property
    def log_file(self) -> Path:
        """Server log written by `pg_ctl`."""
        return self._root / "server.log"

    @property
    def _root(self) -> Path:
        if self.root is None:
            msg = "the cluster has no folder yet; call start() first"
            raise RuntimeError(msg)
        return self.root

    def connection_kwargs(self, database: str | None = None) -> dict[str, str | int]:
        """Return keyword arguments for `psycopg.connect` over TCP with the password."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": database or self.database,
        }

    def start(self) -> PostgresCluster:
        """Create the cluster in a new temporary folder and start the server. Returns self.

        Raises:
            PostgresUnavailableError: If the binaries or the `postgres` OS user are missing.
            RuntimeError: If `initdb` or `pg_ctl start` fails, with the end of its output.
        """
        binaries = _find_binaries(self.bin_dir)
        owner = self._server_owner()
        self.root = Path(tempfile.mkdtemp(prefix="tap-continu-pg-"))
        try:
            if owner is not None:
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            password_file = self.root / "superuser-password"
            password_file.write_text(self.password + "\n", encoding="utf-8")
            password_file.chmod(0o600)
            if owner is not None:
                os.chown(password_file, owner.pw_uid, owner.pw_gid)
            self._run(
                str(binaries["initdb"]),
                f"--pgdata={self.data_dir}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            )
            password_file.unlink()
            self.port = self.port or _free_port()
            # A throwaway cluster needs no durability, so fsync, synchronous_commit and
            # full_page_writes are off.
            server_options = (
                f"-c listen_addresses={self.host} -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c timezone={self.timezone} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            self._run(
                str(binaries["pg_ctl"]),
                f"--pgdata={self.data_dir}",
                f"--log={self.log_file}",
                f"--options={server_options}",
                f"--timeout={START_TIMEOUT_SECONDS}",
                "--wait",
                "start",
            )
            self.pid = self._read_pid()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete its folder. Safe to call more than once."""
        if self.root is None:
            return
        if self.data_dir.joinpath("postmaster.pid").exists():
            pid = self.pid or self._read_pid()
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    f"--pgdata={self.data_dir}",
                    "--mode=fast",
                    f"--timeout={STOP_TIMEOUT_SECONDS}",
                    "--wait",
                    "stop",
                )
            except (RuntimeError, OSError):
                if pid is not None:
                    _kill(pid)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self.pid = None

    def _server_owner(self) -> pwd.struct_passwd | None:
        """Return the OS user that must own the cluster when running as root, else None."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            msg = (
                f"OS user {SERVER_USER!r} not found; PostgreSQL does not run as root. "
                "Debian's postgresql-15 package creates that user."
            )
            raise PostgresUnavailableError(msg) from None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        completed = subprocess.run(
            [*prefix, *command],
            cwd=self._root,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode == 0:
            return
        output = (completed.stdout + completed.stderr).strip()[-2000:]
        log = ""
        if self.log_file.exists():
            log = "\nServer log:\n" + self.log_file.read_text(errors="replace")[-2000:]
        msg = (
            f"{Path(command[0]).name} failed with exit code {completed.returncode}:\n{output}{log}"
        )
        raise RuntimeError(msg)

    def _read_pid(self) -> int | None:
        """Return the postmaster's pid from its `postmaster.pid`, or None when absent."""
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().splitlines()[0])
        return None


def _kill(pid: int) -> None:
    """Send SIGTERM to `pid`, then SIGKILL if it still runs after the stop timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

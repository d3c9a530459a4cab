"""A private one-node SLURM cluster for the tests, from Debian's packages (slurm-wlm 22.05, munge, slurmdbd,
mariadb-server): its own munge key and socket, a mariadb with its own datadir and socket, slurmdbd over it for
accounting (sacct), slurmctld and slurmd on 127.0.0.1, every file in one temp folder, the clients pointed at it
by SLURM_CONF. Debian's policy-rc.d blocks service starts, so the daemons are started here, in the foreground,
and stopped by PID; a developer's own SLURM or MariaDB is never touched. Also: a real `mlflow server`."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from stockcast.serving.private_server import free_ports

# Debian's packages (slurm-wlm brings slurmctld, slurmd and the clients) and the programs used from them.
PACKAGES = "slurm-wlm munge slurmdbd mariadb-server"
PROGRAMS = ("munged", "mariadb-install-db", "mariadbd", "mariadb", "slurmdbd", "slurmctld", "slurmd", "sbatch",
            "sacct", "sacctmgr", "squeue", "sinfo", "scancel")
SBIN = ("/usr/sbin", "/usr/bin", "/sbin")
CLUSTER = "stockcast"
PARTITION = "debug"


def missing_programs() -> list[str]:
    """The programs of PACKAGES that are not installed."""
    return [program for program in PROGRAMS if _which(program) is None]


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]  # os.environ plus SLURM_CONF: what every SLURM client (and submitit) needs

    def run(self, *command: str, check: bool = True, timeout: float = 60) -> str:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr or done.stdout}")
        return done.stdout

    def jobs(self, timeout: float = 30) -> list[tuple[str, str, str, str]]:
        """Every job accounting knows of, once none is pending or running (accounting lags the job's end by a
        moment): (job id, name, state, exit code)."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.run("sacct", "-X", "-n", "-P", "-a", "--format=JobID,JobName,State,ExitCode")
            jobs = [tuple(line.split("|")) for line in out.splitlines() if line]
            if time.monotonic() > deadline or not any(job[2] in ("PENDING", "RUNNING", "COMPLETING") for job in jobs):
                return jobs  # type: ignore[return-value]
            time.sleep(0.5)

    def wait_for_jobs(self, timeout: float = 300) -> None:
        """Until the queue is empty."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-o", "%i").strip():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still queued after {timeout} s: {self.run('squeue')}")
            time.sleep(1)


def _wait(what: str, ready, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (exit {process.returncode}): {tail}")
        time.sleep(0.2)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class _Daemons:
    """Processes started in the foreground, stopped by PID in reverse order (TERM, then KILL)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.started = folder, []

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.folder / f"{name}.out", "wb") as log:  # the daemon keeps its own copy of the descriptor
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.started.append(process)
        return process

    def stop(self) -> None:
        """Each daemon leads a session of its own (its workers, e.g. the mlflow server's, with it): TERM it, KILL
        what is left of it after 20 s."""
        for process in reversed(self.started):
            for signum, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(process.pid, signum)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
                with contextlib.suppress(ProcessLookupError):  # the leader is gone: its workers go now
                    os.killpg(process.pid, signal.SIGKILL)
                break


def _leftovers(folder: Path) -> list[psutil.Process]:
    """Processes of this cluster's jobs: their command line or environment names its folder (SLURM_CONF)."""
    mark, found = str(folder), []
    for process in psutil.process_iter(["cmdline", "pid"]):
        if process.pid == os.getpid():
            continue
        try:
            if mark in " ".join(process.info["cmdline"] or []) or mark in process.environ().get("SLURM_CONF", ""):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _config(folder: Path, ports: dict[str, int], cpus: int, memory_mb: int, munge: Path) -> Path:
    node = socket.gethostname().split(".")[0]
    common = f"AuthType=auth/munge\nAuthInfo=socket={munge}\n"
    (folder / "slurm.conf").write_text(f"""\
ClusterName={CLUSTER}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports['slurmctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
{common}CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['slurmdbd']}
AccountingStoragePass={munge}
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=2
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    dbd = folder / "slurmdbd.conf"  # beside slurm.conf, where slurmdbd looks; 0600, as it demands
    dbd.write_text(f"""\
{common}DbdHost={node}
DbdAddr=127.0.0.1
DbdPort={ports['slurmdbd']}
SlurmUser=root
PidFile={folder}/slurmdbd.pid
LogFile={folder}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mariadb']}
StorageUser=slurm
StoragePass={ports['password']}
StorageLoc=slurm_acct_db
""")
    dbd.chmod(0o600)
    return folder / "slurm.conf"


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """Bring the cluster up (about 10 s), yield it, then cancel its jobs and stop every daemon by PID."""
    folder = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))  # short: it holds unix sockets
    daemons = _Daemons(folder)
    try:
        for sub in ("state", "spool", "db", "munge"):
            (folder / sub).mkdir(mode=0o700)
        munge_key, munge_socket = folder / "munge" / "munge.key", folder / "munge" / "munge.socket"
        munge_key.write_bytes(secrets.token_bytes(1024))
        munge_key.chmod(0o400)
        munged = daemons.start("munged", _which("munged"), "-F", "--force", f"--key-file={munge_key}",
                               f"--socket={munge_socket}", f"--pid-file={folder / 'munge' / 'munged.pid'}",
                               f"--log-file={folder / 'munge' / 'munged.log'}",
                               f"--seed-file={folder / 'munge' / 'munged.seed'}")
        _wait("munged", munge_socket.exists, munged, folder / "munged.out")

        mariadb_port, slurmdbd_port, slurmctld_port, slurmd_port = free_ports(4)
        password = secrets.token_hex(12)
        db_socket = folder / "db" / "mysqld.sock"
        install = subprocess.run([_which("mariadb-install-db"), "--no-defaults", f"--datadir={folder / 'db' / 'data'}",
                                  "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
                                 capture_output=True, text=True, timeout=120)
        if install.returncode:
            raise RuntimeError(f"mariadb-install-db: {install.stderr or install.stdout}")
        mariadb = daemons.start("mariadbd", _which("mariadbd"), "--no-defaults", f"--datadir={folder / 'db' / 'data'}",
                                f"--socket={db_socket}", f"--port={mariadb_port}", "--bind-address=127.0.0.1",
                                f"--pid-file={folder / 'db' / 'mariadbd.pid'}", "--user=root",
                                "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
                                "--innodb-lock-wait-timeout=900")
        _wait("mariadbd", lambda: _listening(mariadb_port), mariadb, folder / "mariadbd.out")
        sql = (f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        subprocess.run([_which("mariadb"), "--no-defaults", f"--socket={db_socket}", "-uroot", "-e", sql],
                       check=True, capture_output=True, timeout=60)

        conf = _config(folder, {"mariadb": mariadb_port, "slurmdbd": slurmdbd_port, "slurmctld": slurmctld_port,
                                "slurmd": slurmd_port, "password": password},  # type: ignore[dict-item]
                       cpus=os.cpu_count() or 1, memory_mb=int(psutil.virtual_memory().total / 2**20 * 0.8),
                       munge=munge_socket)
        env = os.environ | {"SLURM_CONF": str(conf)}
        cluster = Cluster(folder, env)
        slurmdbd = daemons.start("slurmdbd", _which("slurmdbd"), "-D", env=env)
        _wait("slurmdbd", lambda: _listening(slurmdbd_port), slurmdbd, folder / "slurmdbd.log")
        cluster.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        slurmctld = daemons.start("slurmctld", _which("slurmctld"), "-D", "-i", env=env)
        _wait("slurmctld", lambda: _listening(slurmctld_port), slurmctld, folder / "slurmctld.log")
        slurmd = daemons.start("slurmd", _which("slurmd"), "-D", env=env)

        def idle() -> bool:
            return cluster.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle"

        _wait("slurmd", idle, slurmd, folder / "slurmd.log")
        yield cluster
    finally:
        if (folder / "slurm.conf").exists() and _which("scancel"):
            subprocess.run([_which("scancel"), "--full", f"--partition={PARTITION}"], capture_output=True,
                           env=os.environ | {"SLURM_CONF": str(folder / "slurm.conf")}, timeout=30, check=False)
        daemons.stop()
        for process in _leftovers(folder):
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on a free loopback port (sqlite store, artifacts served from `folder/artifacts`);
    yields its URI, stopped by PID at the end."""
    (port,) = free_ports(1)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]
    daemons = _Daemons(folder)
    try:
        server = daemons.start("mlflow", *command)
        _wait("mlflow server", lambda: _listening(port), server, folder / "mlflow.out", timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        daemons.stop()

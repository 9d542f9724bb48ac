"""A single-node SLURM cluster on this machine for the tests (Debian's slurm-wlm and munge, as root):
a generated munge key, munged, slurmctld and slurmd on free loopback ports, every state, spool and
log folder inside `folder`. `with SlurmCluster(folder) as env:` gives the environment (SLURM_CONF)
that sbatch, squeue and scancel need; every daemon started is stopped on exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def slurm_available() -> str:
    """'' when a cluster can be started here, else why not."""
    missing = [name for name in (*DAEMONS, "sbatch", "squeue", "scancel") if shutil.which(name) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install slurm-wlm munge)"
    return "" if os.geteuid() == 0 else "the daemons must start as root"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError(f"{path} was not written")


class SlurmCluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pids: list[int] = []
        self.env: dict[str, str] = {}

    def __enter__(self) -> dict[str, str]:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self.env

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        root = self.folder
        for name in ("munge", "state", "spool", "log"):
            (root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "munge", 0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        sock = root / "munge" / "munge.socket"
        subprocess.run(
            ["munged", "--force", f"--key-file={key}", f"--socket={sock}", f"--pid-file={root / 'munge' / 'munged.pid'}",
             f"--log-file={root / 'log' / 'munged.log'}", f"--seed-file={root / 'munge' / 'munged.seed'}"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.pids.append(_pid(root / "munge" / "munged.pid"))
        conf = root / "slurm.conf"
        host = socket.gethostname().split(".")[0]
        conf.write_text(
            f"ClusterName=mr1test\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n"
            f"SlurmctldPort={_free_port()}\nSlurmdPort={_free_port()}\n"
            f"AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={sock}\n"
            f"StateSaveLocation={root / 'state'}\nSlurmdSpoolDir={root / 'spool'}\n"
            f"SlurmctldPidFile={root / 'slurmctld.pid'}\nSlurmdPidFile={root / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}\nSlurmdLogFile={root / 'log' / 'slurmd.log'}\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_CPU\nSchedulerType=sched/backfill\nReturnToService=2\n"
            "MpiDefault=none\nJobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
            "KillWait=5\nInactiveLimit=0\nMinJobAge=300\n"
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n"
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n"
        )
        self.env = {**os.environ, "SLURM_CONF": str(conf)}
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, capture_output=True, env=self.env)
        self.pids.append(_pid(root / "slurmctld.pid"))
        subprocess.run(["slurmd", "-f", str(conf)], check=True, capture_output=True, env=self.env)
        self.pids.append(_pid(root / "slurmd.pid"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env
            ).stdout
            if out.strip() in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not come up: sinfo says {out.strip()!r}; logs in {root / 'log'}")

    def stop(self) -> None:
        """Stop every daemon this cluster started (slurmd, slurmctld, then munged) and wait for each."""
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()

"""Run the real ``vidrestore`` command line in many child processes, cheaply.

Importing torch and the library costs seconds per process; a test module that runs the command
line a hundred times would spend minutes on imports alone. :class:`CliForker` starts one server
process that imports the library once (and runs nothing: no torch thread exists yet), then forks
a child per run. Each child is a real process running ``vidrestore``'s own entry point with its
own working folder, environment, standard streams and exit status, as a shell would start it;
only the imports are shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_SERVER = r'''
import json, os, sys
import torch, av, cv2, numpy                      # noqa: F401  the expensive imports, once
import vidrestore.cli, vidrestore.restore.api, vidrestore.faces.api      # noqa: F401
import vidrestore.batch.driver, vidrestore.faces, vidrestore.weights    # noqa: F401
import vidrestore.hosts.rawpipe                                         # noqa: F401
out = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            for fd, name, mode in ((0, job["stdin"], os.O_RDONLY),
                                   (1, job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                   (2, job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                f = os.open(name, mode, 0o644)
                os.dup2(f, fd)
                os.close(f)
            sys.stdin = open(0, closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            sys.argv = ["vidrestore", *job["argv"]]
            from vidrestore.cli import main
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    out.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
    out.flush()
'''


@dataclass(frozen=True)
class Run:
    """The outcome of one command."""

    rc: int
    stdout: str
    stderr: str


class CliForker:
    """One server process; :meth:`run` executes ``vidrestore ARGS`` in a forked child."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def run(self, *args: str, cwd: Path, env: dict[str, str], stdin: Path | None = None) -> Run:
        self.count += 1
        out = self.scratch / f"run{self.count}.out"
        err = self.scratch / f"run{self.count}.err"
        job = {"argv": list(args), "cwd": str(cwd), "env": env,
               "stdin": str(stdin) if stdin is not None else os.devnull,
               "stdout": str(out), "stderr": str(err)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the command server ended")
        rc = int(json.loads(line)["rc"])
        return Run(rc, out.read_text(errors="replace"), err.read_text(errors="replace"))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

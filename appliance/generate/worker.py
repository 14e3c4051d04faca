"""The child process of :class:`appliance.generate.isolated.IsolatedBackend`: llama.cpp decoding, nothing else.

Started as ``python -P -m appliance.generate.worker FD`` (the working directory off ``sys.path``) with one end of a
socket pair. Messages (pickled tuples): ``("init", model_path, options)`` → ``("ready", {"n_embd", "n_vocab"})``;
``("generate", jobs, params, batch)`` → ``("step", n)`` per decode step and ``("done", Completion)`` per output,
then ``("end", None)``; ``("logits", soft, ids, bos)`` → ``("end", array)``; ``("close", None)``. An exception is
sent back as ``("error", exc)`` and re-raised by the parent. Ctrl-C is the parent's to handle (it stops the worker);
the worker dies with its parent.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from appliance.generate.isolated import die_with_parent

CRASH_ENV = "APPLIANCE_WORKER_SIMULATE"  # tests only: "segv_after:N" dies of SIGSEGV after N completions


def _crash_after() -> int | None:
    spec = os.environ.get(CRASH_ENV, "")
    return int(spec.split(":", 1)[1]) if spec.startswith("segv_after:") else None


def _send_error(conn: Connection, exc: BaseException) -> None:
    try:
        pickle.dumps(exc)
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__} in the llama.cpp worker")
    conn.send(("error", exc))


def serve(conn: Connection) -> int:
    kind, path, options = conn.recv()
    if kind != "init":
        return 2
    from appliance.generate.llama import LlamaCppBackend

    try:
        be = LlamaCppBackend(path, **options)
    except Exception as exc:
        _send_error(conn, exc)
        return 1
    conn.send(("ready", {"n_embd": be.n_embd, "n_vocab": be.n_vocab}))
    crash_after = _crash_after()
    sent = 0
    try:
        while True:
            try:
                msg: tuple[Any, ...] = conn.recv()
            except EOFError:
                return 0
            if msg[0] == "close":
                return 0
            try:
                if msg[0] == "generate":
                    _, jobs, params, batch = msg

                    def step(n: int) -> None:
                        conn.send(("step", n))

                    for c in be.generate(jobs, params, batch=batch, on_step=step):
                        if crash_after is not None and sent >= crash_after:
                            os.kill(os.getpid(), signal.SIGSEGV)
                        conn.send(("done", c))
                        sent += 1
                    conn.send(("end", None))
                elif msg[0] == "logits":
                    _, soft, ids, bos = msg
                    conn.send(("end", be.prompt_logits(soft, ids, prefix_bos=bos)))
                else:
                    raise RuntimeError(f"unknown worker message {msg[0]!r}")
            except (BrokenPipeError, ConnectionResetError):
                return 0
            except Exception as exc:
                _send_error(conn, exc)
    finally:
        be.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    return serve(Connection(int(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

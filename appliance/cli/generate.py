"""`appliance generate DATASET --n N [...]` and `appliance generate --resume BATCH_ID`."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from appliance.cli.common import err_console, print_json, state
from appliance.errors import BadInput

EXIT_INTERRUPTED = 130


class _Bar:
    """Progress bar on stderr (shown once generation starts): records done of requested, tokens per second."""

    def __init__(self) -> None:
        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("records"),
            TextColumn("{task.fields[tps]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self.task = self.p.add_task("generating", total=None, tps="")
        self.n_tokens = 0
        self.t0 = time.perf_counter()

    def start(self, total: int, done: int) -> None:
        self.p.update(self.task, total=total, completed=done)
        self.p.start()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        """Stop the bar if it is running: rich's ``Progress.stop`` prints a newline on a non-interactive console
        whether or not the bar ever started (an error before generation began, or a second stop)."""
        if self.p.live.is_started:
            self.p.stop()

    def tokens(self, n: int) -> None:
        self.n_tokens += n
        dt = time.perf_counter() - self.t0
        if dt > 0:
            self.p.update(self.task, tps=f"{self.n_tokens / dt:.1f} tokens/s")

    def record(self) -> None:
        self.p.advance(self.task)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def generate(
    ctx: typer.Context,
    dataset: str | None = typer.Argument(None, help="dataset to imitate (omit with --resume)"),
    n: int | None = typer.Option(None, "--n", help="number of outputs to generate"),
    prompt: str | None = typer.Option(None, "--prompt", help="soft prompt id (default: newest exportable DP prompt)"),
    few_shot: int | None = typer.Option(
        None, "--few-shot", help="baseline: put K raw training seeds in the prompt (not private, never exportable)"
    ),
    label: str | None = typer.Option(None, "--label", help="generate only this label (labelled datasets)"),
    temperature: float | None = typer.Option(None, "--temperature", help="sampling temperature (0: greedy)"),
    top_p: float | None = typer.Option(None, "--top-p", help="nucleus sampling mass"),
    guidance: float | None = typer.Option(
        None, "--guidance", help="soft prompt: weight g of log p + g·(log p − log q), q per --contrast (0: off)"
    ),
    contrast: str | None = typer.Option(
        None,
        "--contrast",
        help="what guidance contrasts the prompt with: prior (the public prior, the same label) or labels (the same"
        " prompt with another of its labels; labelled prompts)",
    ),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="tokens per output at most"),
    seed: int | None = typer.Option(None, "--seed", help="same seed and settings give the same outputs"),
    batch: int | None = typer.Option(None, "--batch", help="sequences decoded in parallel"),
    model: str | None = typer.Option(None, "--model", help="model name from `appliance models list`"),
    resume: str | None = typer.Option(None, "--resume", help="finish an interrupted batch by id"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object (id, counts, tokens/s)"),
) -> None:
    """Generate synthetic records with a soft prompt (or the few-shot baseline) into a new batch."""
    from appliance.generate import runner
    from appliance.generate.plan import GenerateOptions

    if resume is not None:
        given = [dataset, n, prompt, few_shot, label, temperature, top_p, guidance, contrast, max_tokens, seed]
        given += [batch, model]
        if any(v is not None for v in given):
            raise BadInput("--resume BATCH_ID takes no dataset or generation options; they are stored in the batch")
    elif dataset is None or n is None:
        raise BadInput("usage: appliance generate DATASET --n N [--prompt ID | --few-shot K] (or --resume BATCH_ID)")
    c = state(ctx).open()
    try:
        bar = _Bar()
        with _sigterm_as_interrupt():
            try:
                if resume is not None:
                    result = runner.resume(c, resume, bar)
                else:
                    opts = GenerateOptions(
                        dataset=dataset or "",
                        n=n or 0,
                        prompt_id=prompt,
                        few_shot=few_shot,
                        label=label,
                        temperature=temperature,
                        top_p=top_p,
                        guidance=guidance,
                        contrast=contrast,
                        max_tokens=max_tokens,
                        seed=seed,
                        batch=batch,
                        model=model,
                    )
                    result = runner.start(c, opts, bar)
            except runner.BatchInterrupted as stop:
                bar.stop()
                r = stop.result
                err_console.print(
                    f"interrupted: {r.n_stored}/{r.n_requested} outputs stored in batch {r.batch_id} — "
                    f"finish with `appliance generate --resume {r.batch_id}`",
                    markup=False,
                )
                raise typer.Exit(EXIT_INTERRUPTED) from None
            finally:
                bar.stop()
        from appliance.curate import dp_selection  # after the batch: its import costs ~1 s
        from appliance.store import batches

        note = dp_selection.outlook(c, batches.require(c.db, result.batch_id))
    finally:
        c.close()
    if as_json:
        print_json(result.as_dict())
    else:
        typer.echo(result.batch_id)
        err_console.print(
            f"batch {result.batch_id}: {result.status}, {result.n_stored}/{result.n_requested} outputs stored "
            f"({result.n_new} new, {result.n_dropped} dropped by the PII policy), {result.tokens} tokens, "
            f"{result.tokens_per_s:.1f} tokens/s",
            markup=False,
        )
    if note is not None:
        err_console.print(note, markup=False)

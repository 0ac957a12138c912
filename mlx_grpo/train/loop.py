"""The training loop: `train(trainer, ...)` runs the steps and owns everything around them.

Like mlx-lm's `tuner.trainer.train`, the library owns the loop and the caller plugs in through
callbacks; `mlx-grpo train` and `mlx-grpo demo` only parse flags, build the `Trainer` and
render. What `train` does, in order:

1. `resume_from` (a checkpoint folder): restore weights, optimizer state and the data cursor;
   metrics lines written after that checkpoint are moved aside to
   `metrics.after-step-N.jsonl` (never deleted), because they will be recomputed;
2. write the resolved config.yaml;
3. until `cfg.steps`: `trainer.train_step()`, then the callbacks' `on_step_end` (they may add
   metrics: the eval every `logging.eval_every` steps is one), then the metrics line and the
   sample rows are appended to the run folder, then `on_log`; a checkpoint every
   `checkpoint.every` steps and at the last step (`on_save` after each);
4. Ctrl-C finishes the step in flight, writes a checkpoint and stops (a second Ctrl-C stops
   at once, keeping the last checkpoint); the result says it stopped;
5. `on_train_end`.

`write=False` keeps a process from writing the run folder at all (config, metrics, samples,
checkpoints); by default only rank 0 of the trainer's `world` writes (one process: it does).
Callbacks still run on every rank. With several ranks the loop also keeps them in step: a
Ctrl-C on any rank stops all after the same step, the trainable weights are compared at every
checkpoint (`World.check_in_sync`), and no rank leaves while rank 0 is writing one.

`new_run` / `resume_run` turn a config file or a run folder into a `RunSetup` (the config,
where the run lives, which checkpoint it continues from) before any model loads.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo import rundir
from mlx_grpo.config import TrainConfig, load_config, save_config
from mlx_grpo.errors import UserError
from mlx_grpo.sft.config import is_sft_config
from mlx_grpo.train.checkpoint import CorruptCheckpoint
from mlx_grpo.train.distributed import World
from mlx_grpo.train.trainer import StepOutput, Trainer

# ----------------------------------------------------------------------------- setup


@dataclass
class RunSetup:
    """What a training run is: the config, where it writes, and what it resumes from."""

    cfg: TrainConfig
    run_dir: Path
    resume_from: Path | None = None


ConfigLoader = Callable[[Path | None, list[str]], Any]


def check_config_or_resume(config: Path | None, resume: Path | None) -> None:
    """A command starts a run from a config or continues one: exactly one of the two."""
    if config is None and resume is None:
        raise UserError("give a config with --config FILE, or a run to continue with --resume DIR")
    if config is not None and resume is not None:
        raise UserError("--config and --resume exclude each other (a run keeps its own config)")


def new_run(
    config_path: Path | None,
    overrides: list[str],
    load: ConfigLoader = load_config,
    prefix: str = "grpo",
    world: World | None = None,
) -> RunSetup:
    """Validate the config and choose a fresh run directory (refusing to overwrite one).

    `load` reads the config (another command's config tree, e.g. `mlx-grpo sft`'s), `prefix`
    starts a timestamped run name. With several ranks, rank 0 names the run and checks the
    folder; every rank gets its answer (the same name, or the same error)."""
    cfg = load(config_path, overrides)
    world = world or World()
    name, error = None, None
    if world.is_main:
        name = cfg.logging.run_name or time.strftime(f"{prefix}-%Y%m%d-%H%M%S")
        run_dir = Path(cfg.logging.output_dir) / name
        if rundir.holds_run(run_dir):
            error = (
                "run directory already holds a run; continue it with --resume "
                f"{run_dir} or choose another logging.run_name"
            )
    name, error = world.from_main([name, error])
    run_dir = Path(cfg.logging.output_dir) / name
    if error:
        raise UserError(error, where=str(run_dir))
    cfg.logging.run_name = name
    return RunSetup(cfg, run_dir)


def resume_run(run_dir: Path, overrides: list[str], load: ConfigLoader = load_config) -> RunSetup:
    """Reopen a run: its own resolved config (plus overrides) and its newest checkpoint."""
    config_file = rundir.config_file(run_dir)
    if not config_file.is_file():
        raise UserError("not a run directory (no config.yaml)", where=str(run_dir))
    if load is load_config and is_sft_config(rundir.read_run_config(run_dir)):
        raise UserError(
            f"an SFT run; continue it with mlx-grpo sft --resume {run_dir}", where=str(run_dir)
        )
    cfg = load(config_file, overrides)
    newest = rundir.pick_step(run_dir)[1] if rundir.list_steps(run_dir) else None
    return RunSetup(cfg, run_dir, newest)


# ----------------------------------------------------------------------------- callbacks


class Callback:
    """Hooks of `train`; override the ones you need (each does nothing by default).

    - `on_train_begin`: after a resume is restored and config.yaml is written;
    - `on_step_end`: a step is done; add keys to `out.metrics` here (they are written);
    - `on_log`: the metrics line as written (progress views, TensorBoard / W&B reporters);
    - `on_save`: a checkpoint folder was written;
    - `on_train_end`: the loop is over (finished, or stopped by Ctrl-C).
    """

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        pass

    def on_log(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        pass

    def on_save(self, trainer: Trainer, folder: Path) -> None:
        pass

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        pass


class EvalEvery(Callback):
    """`trainer.evaluate()` every `every` steps, merged into that step's metrics (`eval/...`)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        if self.every and trainer.canaries and out.step % self.every == 0:
            out.metrics |= trainer.evaluate()


def default_callbacks(cfg: TrainConfig) -> list[Callback]:
    """What every run gets before the caller's callbacks: the periodic eval of `logging`."""
    return [EvalEvery(cfg.logging.eval_every)] if cfg.logging.eval_every else []


# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    """How the loop ended."""

    step: int  # the last step trained
    stopped: bool  # Ctrl-C stopped it before `cfg.steps`
    last_checkpoint: Path | None


class StopFlag:
    """Set by the first Ctrl-C; the loop stops after the current step."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def graceful_interrupt() -> Iterator[StopFlag]:
    """First SIGINT sets the flag, the second raises KeyboardInterrupt as usual."""
    flag = StopFlag()

    def handler(signum: int, frame: object) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: keep the default behaviour
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def train(
    trainer: Trainer,
    *,
    resume_from: Path | None = None,
    callbacks: Sequence[Callback] = (),
    write: bool | None = None,
) -> TrainResult:
    """Train `trainer` to `cfg.steps` (see the module docstring); returns how it ended."""
    cfg, run, world = trainer.cfg, trainer.run_dir, world_of(trainer)
    write = world.is_main if write is None else write
    hooks = [*default_callbacks(cfg), *callbacks]
    _start(trainer, resume_from, write)
    for hook in hooks:
        hook.on_train_begin(trainer)
    last_saved: Path | None = None
    saved_step = trainer.step
    with graceful_interrupt() as stop:
        while trainer.step < cfg.steps and not stop.requested:
            out = trainer.train_step()
            for hook in hooks:
                hook.on_step_end(trainer, out)
            if write:
                rundir.append_jsonl(rundir.metrics_file(run), [out.metrics])
                if out.samples:
                    rundir.append_jsonl(rundir.samples_file(run), out.samples)
            for hook in hooks:
                hook.on_log(trainer, out.metrics)
            if trainer.step % cfg.checkpoint.every == 0 or trainer.step == cfg.steps:
                last_saved, saved_step = _save(trainer, hooks, write), trainer.step
            stop.requested = world.any(stop.requested)  # one rank's Ctrl-C stops every rank
        if trainer.step != saved_step:
            last_saved = _save(trainer, hooks, write)
    result = TrainResult(trainer.step, stop.requested, last_saved)
    for hook in hooks:
        hook.on_train_end(trainer, result)
    return result


def world_of(trainer: Any) -> World:
    """The trainer's ranks (an SFT trainer, or any without a `world`, is a world of one)."""
    return getattr(trainer, "world", None) or World()


def _start(trainer: Trainer, resume_from: Path | None, write: bool) -> None:
    """Restore a checkpoint if asked, set later metrics aside, write config.yaml.

    With several ranks, rank 0 picks the checkpoint (setting damaged ones aside) and the
    others restore the same one, read from the same path."""
    run, world = trainer.run_dir, world_of(trainer)
    if write:
        run.mkdir(parents=True, exist_ok=True)
    if resume_from is not None and not world.distributed:
        restore_newest_loadable(trainer, resume_from)
    elif world.distributed:  # every rank asks, so none waits for an answer never sent
        main_resumes = world.is_main and resume_from is not None
        chosen = restore_newest_loadable(trainer, resume_from) if main_resumes else None
        name = world.from_main(None if chosen is None else str(chosen))
        if name is not None and not world.is_main:
            trainer.restore(Path(name))
    if write:  # a resume (with or without a checkpoint) recomputes every step after this one
        rundir.set_aside_after(run, trainer.step)
    if write:
        save_config(trainer.cfg, rundir.config_file(run))


def restore_newest_loadable(trainer: Trainer, newest: Path) -> Path | None:
    """Restore `newest`; when its files are damaged, the newest older checkpoint that loads.

    A damaged checkpoint is renamed `<name>.corrupt` (kept, never deleted) and named in one
    line on stderr; with none left that loads, the run starts again from step 0."""
    limit = rundir.step_of(newest)
    steps = rundir.list_steps(trainer.run_dir).items()
    candidates = [f for s, f in sorted(steps, reverse=True) if limit is None or s <= limit]
    for folder in candidates or [newest]:
        try:
            trainer.restore(folder)
            return folder
        except CorruptCheckpoint as exc:
            kept = _free_name(folder.with_name(f"{folder.name}.corrupt"))
            folder.rename(kept)
            print(f"warning: {exc}; kept as {kept.name}, trying an older one", file=sys.stderr)
    print("warning: no checkpoint loads; starting again from step 0", file=sys.stderr)
    return None


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`, ... : the first name not taken."""
    number = 1
    while path.exists() if number == 1 else path.with_name(f"{path.name}.{number}").exists():
        number += 1
    return path if number == 1 else path.with_name(f"{path.name}.{number}")


def _save(trainer: Trainer, hooks: Sequence[Callback], write: bool) -> Path | None:
    """Rank 0 writes the checkpoint, once every rank's weights are checked to be the same;
    the others wait for it (none exits while rank 0 is still writing)."""
    world = world_of(trainer)
    world.check_in_sync(trainer.policy.model.trainable_parameters(), trainer.step)
    folder = trainer.save() if write else None
    world.barrier()
    if folder is None:
        return None
    for hook in hooks:
        hook.on_save(trainer, folder)
    return folder

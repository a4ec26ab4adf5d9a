"""``voxloop demo``: the whole loop on the embedded corpus — train, serve, experiment,
measure, decide.

1. Train two model versions on the embedded Home Assistant corpus (``hass:LANG``): ``v1``,
   last month's model (10% of the training split, no sentence encoder, fewer CRF
   epochs), and ``v2`` (the whole training split); evaluate both on the held-out split.
2. Start ``voxloop serve`` on 127.0.0.1 (a free port) with both versions loaded and an
   experiments file: in one layer, experiment ``nlu-v2`` splits 75% of users 50/50 between
   ``v1`` and ``v2``; experiment ``responses`` splits the other 25% between the fixed
   response (always the first candidate) and a LinUCB bandit, both on ``v2``.
3. Replay simulated users (`voxloop.demo.users`) over several simulated days through the
   real HTTP API: held-out utterances, rephrases after misunderstandings, feedback.
4. Stop the server (the log is flushed, the bandit's learning saved), compute the KPIs
   from the turn log, analyse both experiments, run off-policy evaluation of the learned
   bandit on its arm's logged decisions, and list the worst failing utterances.
5. Write one HTML report and print a summary with the verdicts.

Every step prints what it does; a failing step stops the demo with a message naming it
and leaves the work directory as it was (the server's output is in ``server.log``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError, VoxloopError

__all__ = ["DemoResult", "DemoSettings", "run_demo"]

START = date(2026, 11, 2)

EXPERIMENTS = """\
# The demo's experiments: one layer, so a user is in at most one of them.
version = 1

[layers.demo]
salt = "demo-layer"
description = "the demo's experiments"

[experiments.nlu-v2]
description = "is the model trained on the whole training split better?"
salt = "nlu-v2"
control = "v1"
layer = "demo"
layer_range = [0.0, 0.75]

[experiments.nlu-v2.arms.v1]
weight = 0.5
model_version = "v1"
policy = "fixed"

[experiments.nlu-v2.arms.v2]
weight = 0.5
model_version = "v2"
policy = "fixed"

[experiments.nlu-v2.metrics.defect_rate]
type = "ratio"
role = "primary"
direction = "decrease"

[experiments.nlu-v2.metrics.not_recognized_rate]
type = "ratio"
direction = "decrease"

[experiments.nlu-v2.metrics.rephrase_rate]
type = "ratio"
direction = "decrease"

[experiments.nlu-v2.metrics.task_success_rate]
type = "ratio"
direction = "increase"

[experiments.nlu-v2.metrics.latency_ms]
type = "ratio"
role = "guardrail"
direction = "decrease"

[experiments.responses]
description = "does a bandit choosing the response please users more than a fixed one?"
salt = "responses"
control = "fixed"
layer = "demo"
layer_range = [0.75, 1.0]

[experiments.responses.arms.fixed]
weight = 0.5
model_version = "v2"
policy = "fixed"

[experiments.responses.arms.bandit]
weight = 0.5
model_version = "v2"
policy = "bandit"

[experiments.responses.metrics.negative_feedback_rate]
type = "ratio"
role = "primary"
direction = "decrease"

[experiments.responses.metrics.rating]
type = "ratio"
"""


@dataclass(frozen=True)
class DemoSettings:
    """The demo's knobs (``voxloop demo --help``)."""

    workdir: Path = Path("voxloop-demo")
    users: int = 500
    days: int = 5
    lang: str = "en"
    seed: int = 0
    workers: int = 2


@dataclass
class DemoResult:
    """What the demo measured, and where it wrote things."""

    workdir: Path
    offline: dict[str, dict[str, float]] = field(default_factory=dict)
    simulated_turns: int = 0
    logged_turns: int = 0
    verdicts: dict[str, str] = field(default_factory=dict)
    ope: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    seconds: float = 0.0


class StepFailed(VoxloopError):
    """A demo step failed; the message names it."""


def _say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def _step(number: int, total: int, title: str) -> Iterator[None]:
    _say(f"[{number}/{total}] {title}")
    started = time.perf_counter()
    try:
        yield
    except StepFailed:
        raise
    except (VoxloopError, OSError, RuntimeError, ValueError) as e:
        raise StepFailed(f"step {number} ({title}) failed: {e}") from e
    _say(f"      done in {time.perf_counter() - started:.1f} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What a demo run writes in its workdir: all of it is replaced by the next run there.
OUTPUTS = frozenset(
    {"experiments.toml", "log", "models", "policies", "report.html",
     "retrain_candidates.jsonl", "server.log"}
)  # fmt: skip


def prepare_workdir(work: Path) -> None:
    """Make ``work`` an empty directory for a run: a previous run's outputs are removed (its
    turns would otherwise join this run's log and its analysis); a directory holding
    anything else is refused, so no file of the user's is lost."""
    if work.exists() and not work.is_dir():
        raise ConfigError(f"{work} is a file; choose a directory", key="--workdir")
    if work.is_dir():
        others = sorted(p.name for p in work.iterdir() if p.name not in OUTPUTS)
        if others:
            raise ConfigError(
                f"{work} holds files a demo did not write ({', '.join(others[:3])}); choose a "
                "new or empty directory",
                key="--workdir",
            )
        for path in work.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {work} ({e.strerror})", key="--workdir") from None


def run_demo(settings: DemoSettings, *, progress: Callable[[int], Any] | None = None) -> DemoResult:
    """Run the whole loop (see the module docstring) in ``settings.workdir``, replacing a
    previous run's outputs there; raises `StepFailed` naming the step."""
    started = time.perf_counter()
    work = Path(settings.workdir)
    prepare_workdir(work)
    result = DemoResult(work)
    total = 6
    with _step(
        1, total, f"training two model versions on the embedded corpus hass:{settings.lang}"
    ):
        test = _train(settings, work, result)
    log_dir = work / "log"
    server = None
    try:
        with _step(2, total, "starting voxloop serve with the experiments on 127.0.0.1"):
            server = _start_server(settings, work, log_dir)
            port = server.port
            _say(f"      {server.url}  (output: {work / 'server.log'})")
        with _step(3, total, f"{settings.users} simulated users over {settings.days} days, "
                   "through the HTTP API"):  # fmt: skip
            from voxloop.demo.users import ApiClient, UserSimulation

            simulation = UserSimulation(
                test, users=settings.users, days=settings.days, start=START, seed=settings.seed
            )
            stats = simulation.run(
                lambda: ApiClient("127.0.0.1", port),
                workers=settings.workers,
                on_user=(lambda: progress(1)) if progress is not None else None,
            )
            result.simulated_turns = stats.turns
            _say(f"      {stats.turns:,} turns ({stats.rephrases:,} rephrases), "
                 f"{stats.feedback:,} feedback events")  # fmt: skip
        with _step(4, total, "stopping the server (flushing the log, saving the bandit)"):
            server.stop()
            server = None
    finally:
        if server is not None:
            server.kill()
    with _step(5, total, "KPIs, experiment analysis and off-policy evaluation from the log"):
        sections = _measure(work, log_dir, result)
    with _step(6, total, "writing the report"):
        from voxloop.report.html import write_report

        result.report = write_report(log_dir, work / "report.html", sections=sections)
        _say(f"      {result.report}")
    result.seconds = time.perf_counter() - started
    return result


# --- 1. training ----------------------------------------------------------------------
def _train(settings: DemoSettings, work: Path, result: DemoResult) -> list[Any]:
    from voxloop.data import load_corpus
    from voxloop.nlu.classical import ClassicalParser
    from voxloop.nlu.evaluate import evaluate

    corpus = load_corpus(f"hass:{settings.lang}")
    train, dev, test = corpus.split("train"), corpus.split("dev"), corpus.split("test")
    shuffled = list(train)
    random.Random(settings.seed).shuffle(shuffled)
    versions = {
        "v1": (shuffled[: max(50, len(shuffled) // 10)],
               ClassicalParser(sentence_encoder="none", crf_epochs=5, seed=settings.seed)),
        "v2": (train, ClassicalParser(sentence_encoder="none", seed=settings.seed)),
    }  # fmt: skip
    texts = [u.text for u in test]
    for version, (data, parser) in versions.items():
        t = time.perf_counter()
        parser.fit(data, dev)
        seconds = time.perf_counter() - t
        parser.save(
            work / "models" / version,
            {"version": version, "training_data": {"spec": f"hass:{settings.lang}",
                                                   "split": "train", "n": len(data)}},
        )  # fmt: skip
        scores = evaluate(test, parser.parse(texts))
        result.offline[version] = {
            "train_utterances": len(data),
            "train_seconds": round(seconds, 1),
            "intent_accuracy": scores.intent_accuracy,
            "slot_f1": scores.slot_f1,
            "exact_match": scores.exact_match,
        }
        _say(f"      {version}: {len(data):,} training utterances, {seconds:.1f} s; held-out "
             f"test: intent {scores.intent_accuracy:.1%}, slot F1 {scores.slot_f1:.1%}, "
             f"exact {scores.exact_match:.1%}")  # fmt: skip
    from voxloop.personalize import Featurizer, LinUCB

    LinUCB(alpha=0.5, epsilon=0.1, featurizer=Featurizer(64)).save(work / "policies" / "start")
    (work / "experiments.toml").write_text(EXPERIMENTS, encoding="utf-8")
    return list(test)


# --- 2. the server --------------------------------------------------------------------
@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        if code != 0:
            raise StepFailed(f"the server exited with status {code}; see server.log")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _start_server(settings: DemoSettings, work: Path, log_dir: Path) -> _Server:
    port = _free_port()
    args = [
        sys.executable, "-m", "voxloop.serve",
        "--model", str(work / "models" / "v1"), "--model-version", "v1",
        "--extra-model", f"v2={work / 'models' / 'v2'}",
        "--experiments", str(work / "experiments.toml"),
        "--policy", f"bandit={work / 'policies' / 'start'}",
        "--save-policies", str(work / "policies" / "learned"),
        "--log-dir", str(log_dir), "--replay-clock",
        "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("VOXLOOP_API_KEY", "VOXLOOP_ADMIN_KEY")}
    with open(work / "server.log", "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = _Server(process, port)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (work / "server.log").read_text(errors="replace")[-800:]
            raise StepFailed(f"the server exited at start:\n{tail}")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    raise StepFailed("the server was not ready within 120 s; see server.log")


# --- 5. measuring ---------------------------------------------------------------------
def _measure(work: Path, log_dir: Path, result: DemoResult) -> list[str]:
    from voxloop.experiments.config import load_config
    from voxloop.experiments.from_log import analyze_log
    from voxloop.log.kpi import compute_kpis
    from voxloop.personalize.bandits import load_policy
    from voxloop.personalize.from_log import evaluate_log
    from voxloop.report.html import experiment_section

    kpis = compute_kpis(log_dir, tables=["summary", "arms", "top_failing"])
    summary = kpis["summary"].to_pylist()[0]
    result.logged_turns = int(summary["turns"])
    _say(f"      log: {summary['turns']:,} turns of {summary['users']:,} users over "
         f"{summary['days']} days; defect rate {summary['defect_rate']:.1%}")  # fmt: skip
    for arm in kpis["arms"].to_pylist():
        _say(f"      {arm['experiment']:>10} / {arm['arm']:<7} {arm['users']:>4} users "
             f"{arm['turns']:>6,} turns  defect rate {arm['defect_rate']:.1%}")  # fmt: skip
    sections = []
    for experiment in load_config(work / "experiments.toml").experiments:
        analysis = analyze_log(log_dir, experiment)
        result.verdicts[experiment.name] = analysis.result.summary
        sections.append(experiment_section(analysis.result))
    learned = work / "policies" / "learned" / "bandit"
    ope, decisions = evaluate_log(log_dir, load_policy(learned), arm="bandit", seed=0)
    result.ope = {
        "turns": ope.n,
        "logged_value": decisions.logged_value,
        **{name: [e.value, e.ci_low, e.ci_high] for name, e in ope.estimates.items()},
    }
    dr = ope.estimates["dr"]
    _say(f"      off-policy: the learned bandit would score {dr.value:.3f} "
         f"[{dr.ci_low:.3f}, {dr.ci_high:.3f}] (doubly robust) on {ope.n:,} logged decisions; "
         f"the logging policy scored {decisions.logged_value:.3f}")  # fmt: skip
    sections.append(_ope_section(ope, decisions.logged_value))
    failing = kpis["top_failing"].to_pylist()
    failing.sort(key=lambda r: (-r["defects"], r["utterance"]))
    path = work / "retrain_candidates.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for row in failing:
            out.write(json.dumps({k: row[k] for k in ("utterance", "domain", "top_intent",
                                                      "turns", "defects")},
                                 ensure_ascii=False) + "\n")  # fmt: skip
    _say(f"      worst failing utterances (all {len(failing)} in {path.name}):")
    for row in failing[:5]:
        _say(f"        {row['defects']:>3} defects  {row['utterance']!r} "
             f"(understood as {row['top_intent']})")  # fmt: skip
    return sections


def _ope_section(ope: Any, logged_value: float) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{e.value:.4f}</td>"
        f"<td>[{e.ci_low:.4f}, {e.ci_high:.4f}]</td></tr>"
        for name, e in ope.estimates.items()
    )
    return (
        "<section><h2>Off-policy evaluation of the learned bandit</h2>"
        f"<p>{ope.n:,} logged decisions of the bandit arm; the logging policy's value was "
        f"{logged_value:.4f}; effective sample size {ope.ess:,.0f}, mean importance weight "
        f"{ope.mean_weight:.3f}.</p><table><tr><th>estimator</th><th>value</th>"
        f"<th>{int(ope.level * 100)}% interval</th></tr>{rows}</table></section>"
    )

"""A realistic turn log for tests and benchmarks: simulated users talking to a real model.

Not uniform random rows. Each simulated user has an activity level (gamma distributed) and
favourite domains (Dirichlet); every day they open a Poisson number of sessions at hours
drawn from a daily rhythm (morning and evening peaks), and say a few utterances per
session, drawn from a real test split of the user's favourite domains. Every distinct
utterance is parsed once, in batches, by a REAL trained model, and the log records that
parse. When the parse is wrong (declined, or an intent other than the gold one), the user
usually rephrases a few seconds later and otherwise often abandons. A rephrase keeps the
user's request: a plain repeat, a small edit of the same words (a filler such as "please"
or "I said" added, or one word dropped), or a paraphrase — another utterance of the same
gold intent from the corpus (often the most similar one). The shares are `Behaviour`
parameters; the ground truth (which turn was rephrased, and how) comes back in
`GeneratedLog` for measuring a rephrase detector's precision and recall per kind.
Feedback follows the truth: barge-ins are ten times likelier after a wrong answer, ratings
are low after one, task success is 0.
Latencies are log-normal with a heavy tail, per model. With two models, users are split
50/50 between a ``control`` and a ``treatment`` arm of experiment ``model``.

`generate_log` writes through `LogWriter` (it is a real turn log, file for file);
`generate_log_fast` draws the same kind of log with numpy for millions of rows (users'
domain preferences, the daily rhythm and sessions of a geometric number of turns ~20 s
apart are kept; one rephrase at most per turn) and writes the day partitions with pyarrow
directly in the writer's schema and metadata.

Ratings are written on the [0, 1] scale ((stars - 1) / 4), so a 1-star rating is 0.0 and
can never be read as the top of the [0, 1] scale.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voxloop.errors import ConfigError, DataError
from voxloop.log.engines import MAX_CHARS
from voxloop.log.writer import (
    FEEDBACK_SCHEMA,
    SCHEMA_VERSION,
    TURN_SCHEMA,
    LogWriter,
    turn_row,
)
from voxloop.schema import Feedback, Parse, Turn, Utterance

__all__ = [
    "Behaviour",
    "GeneratedLog",
    "ModelArm",
    "generate_log",
    "generate_log_fast",
    "lower_as_sql",
    "parse_utterances",
    "trigram_similarity",
    "trigrams",
]

# Share of sessions starting in each UTC hour: night low, morning and evening peaks.
_HOURS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.5, 2, 5, 6, 4, 3, 3, 4, 3, 3, 3, 4, 6, 8, 8, 7, 5, 3, 2], float
)
_HOURS /= _HOURS.sum()
_LAST_SECOND = 86_391.0
"""The latest second of a day a simulated turn starts at: its rephrase (2-8 s later) is
still before midnight, in the same day's partition."""


@dataclass(frozen=True, slots=True)
class ModelArm:
    """A model the simulated users talk to: a parser, the version it logs, its latency
    (median parse and server overhead, milliseconds) and, with two models, its arm."""

    parser: Any
    model_version: str
    arm: str | None = None
    parse_ms: float = 2.0
    overhead_ms: float = 4.0


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How simulated users behave (probabilities per turn unless said otherwise)."""

    sessions_per_day: float = 1.2  # mean per user; users vary (gamma, shape 2)
    turns_per_session: float = 2.5  # mean; geometric
    rephrase: float = 0.6  # after a wrong answer
    max_rephrases: int = 2
    rephrase_repeat: float = 0.2  # a rephrase repeats the same words
    rephrase_edit: float = 0.4  # a rephrase edits them (a filler added, a word dropped)
    # the rest of rephrases are paraphrases: another corpus utterance of the same intent,
    rephrase_most_similar: float = 0.5  # the most similar one (of up to 20) this often
    abandon_after_failure: float = 0.5  # when not rephrasing
    barge_in_right: float = 0.02
    barge_in_wrong: float = 0.25
    rating: float = 0.08
    task_success: float = 0.2
    tail: float = 0.01  # share of latencies multiplied 3-15x

    def __post_init__(self) -> None:
        for name in ("rephrase", "rephrase_repeat", "rephrase_edit", "rephrase_most_similar",
                     "abandon_after_failure", "barge_in_right", "barge_in_wrong", "rating",
                     "task_success", "tail"):  # fmt: skip
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"must be a probability, got {value!r}", key=name)
        if self.rephrase_repeat + self.rephrase_edit > 1:
            raise ConfigError("rephrase_repeat + rephrase_edit must be at most 1",
                              key="rephrase_edit")  # fmt: skip
        if self.sessions_per_day <= 0 or self.turns_per_session < 1:
            raise ConfigError("sessions_per_day > 0 and turns_per_session >= 1 required")


@dataclass
class GeneratedLog:
    """What was generated, with the simulation's ground truth (for testing the KPIs)."""

    directory: Path
    turns: int = 0
    feedback: int = 0
    users: int = 0  # the simulated users who spoke at least once
    days: int = 0
    wrong: int = 0  # turns whose parse was not the gold intent
    # turns the user rephrased -> how: "repeat", "edit" or "paraphrase"
    rephrase_kinds: dict[str, str] = field(default_factory=dict)
    files: int = 0

    @property
    def rephrased_turn_ids(self) -> set[str]:
        """The turns the user rephrased (the failed ones, not the rephrases)."""
        return set(self.rephrase_kinds)


def lower_as_sql(text: str) -> str:
    """``text`` lower-cased as ``texts.sql`` does in DuckDB and Spark alike: a dotted i
    ("İ" lower-cased) as "i", every sigma as "σ" (the engines' LOWER differ there)."""
    return text.lower().replace("i\u0307", "i").replace("ς", "σ")


def trigrams(text: str) -> frozenset[str]:
    """The character trigrams ``turn_facts.sql`` compares: of the text lower-cased
    (`lower_as_sql`), padded with a space each side, cut to its first ``MAX_CHARS``."""
    padded = f" {lower_as_sql(text)} "[:MAX_CHARS]
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def trigram_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the `trigrams` of two texts — the definition ``turn_facts.sql``
    computes in SQL."""
    x, y = trigrams(a), trigrams(b)
    union = len(x | y)
    return len(x & y) / union if union else 0.0


def parse_utterances(parser: Any, texts: Sequence[str], batch: int = 256) -> list[Parse]:
    """Parse texts in batches (each distinct text once)."""
    distinct = list(dict.fromkeys(texts))
    parsed: dict[str, Parse] = {}
    for i in range(0, len(distinct), batch):
        chunk = distinct[i : i + batch]
        parsed.update(zip(chunk, parser.parse(chunk), strict=True))
    return [parsed[t] for t in texts]


_FILLERS = ("please", "i said", "no", "can you", "i want to", "hey")


def _edit(text: str, rng: np.random.Generator) -> str:
    """A small edit of an utterance, as a user repeating a request says it: one word
    dropped (from four words up, half the time), else a filler added before or after."""
    words = text.split()
    if len(words) >= 4 and rng.random() < 0.5:
        del words[int(rng.integers(len(words)))]
        return " ".join(words)
    filler = _FILLERS[int(rng.integers(len(_FILLERS)))]
    return f"{text} please" if filler == "please" else f"{filler} {text}"


class _World:
    """The utterances, their parses under each model, and who rephrases into what.

    ``texts`` holds the ``n`` corpus utterances, then one edit of each (index ``n + i``
    edits utterance ``i``; its gold intent is utterance ``i``'s)."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        models: Sequence[ModelArm],
        threshold: float | None,
        rng: np.random.Generator,
    ) -> None:
        labelled = [u for u in utterances if u.intent]
        if not labelled:
            raise DataError("no labelled utterances to simulate users with")
        if not models or len(models) > 2:
            raise ConfigError("give one model, or two for an A/B experiment", key="models")
        self.utterances = labelled
        self.n = len(labelled)
        self.texts = [u.text for u in labelled] + [_edit(u.text, rng) for u in labelled]
        self.domains = sorted({u.domain or "(none)" for u in labelled})
        by_domain: dict[str, list[int]] = defaultdict(list)
        by_intent: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(labelled):
            by_domain[u.domain or "(none)"].append(i)
            by_intent[u.intent or ""].append(i)
        self.by_domain = {d: np.array(v) for d, v in by_domain.items()}
        self.by_intent = dict(by_intent)
        self.domain_share = np.array([len(by_domain[d]) for d in self.domains], float)
        self.domain_share /= self.domain_share.sum()
        self.parses: list[list[Parse]] = []
        self.right: list[np.ndarray] = []
        parsed: dict[int, list[Parse]] = {}  # one parse per text per distinct parser
        for model in models:
            if id(model.parser) not in parsed:
                parsed[id(model.parser)] = parse_utterances(model.parser, self.texts)
            parses = parsed[id(model.parser)]
            if threshold is not None:
                parses = [
                    replace(p, intent=None) if p.confidence < threshold else p for p in parses
                ]
            self.parses.append(parses)
            gold = [u.intent for u in labelled] * 2
            self.right.append(np.array([p.intent == g for p, g in zip(parses, gold, strict=True)]))
        self.similar = [self._most_similar(i, rng) for i in range(len(labelled))]

    def _most_similar(self, i: int, rng: np.random.Generator) -> int:
        """The most similar other utterance of the same intent among up to 20 (itself when
        it is the only one: the user repeats)."""
        others = [j for j in self.by_intent[self.utterances[i].intent or ""] if j != i]
        if not others:
            return i
        if len(others) > 20:
            others = [int(j) for j in rng.choice(others, 20, replace=False)]
        return max(others, key=lambda j: (trigram_similarity(self.texts[i], self.texts[j]), -j))

    def rephrase_of(self, i: int, rng: np.random.Generator, b: Behaviour) -> tuple[int, str]:
        """What a user says to rephrase text ``i``, and how ("repeat", "edit",
        "paraphrase")."""
        base = i % self.n
        draw = rng.random()
        if draw < b.rephrase_repeat:
            return i, "repeat"
        if draw < b.rephrase_repeat + b.rephrase_edit:
            return (base + self.n if i < self.n else base), "edit"
        if rng.random() < b.rephrase_most_similar:
            return self.similar[base], "paraphrase"
        others = self.by_intent[self.utterances[base].intent or ""]
        j = int(others[rng.integers(len(others))])
        return (j if j != base or len(others) == 1 else self.similar[base]), "paraphrase"


def _latency(rng: np.random.Generator, model: ModelArm, tail: float, n: int | None = None
             ) -> tuple[Any, Any]:  # fmt: skip
    parse = rng.lognormal(np.log(model.parse_ms), 0.35, n)
    total = parse + rng.lognormal(np.log(model.overhead_ms), 0.5, n)
    spike = rng.random(n) < tail
    total = total * np.where(spike, rng.uniform(3, 15, n), 1.0)
    return np.round(total, 3), np.round(parse, 3)


def _turn_id(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _arm_of(user: str, arms: int) -> int:
    if arms == 1:
        return 0
    digest = hashlib.blake2b(f"model:{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % arms


def _models(models: ModelArm | Sequence[ModelArm]) -> list[ModelArm]:
    models = [models] if isinstance(models, ModelArm) else list(models)
    if len(models) == 2:
        models = [replace(m, arm=m.arm or name) for m, name in
                  zip(models, ("control", "treatment"), strict=True)]  # fmt: skip
    return models


def generate_log(
    out: str | Path,
    utterances: Sequence[Utterance],
    models: ModelArm | Sequence[ModelArm],
    *,
    users: int = 100,
    days: int = 7,
    start: date = date(2026, 11, 1),
    behaviour: Behaviour | None = None,
    threshold: float | None = None,
    seed: int = 0,
) -> GeneratedLog:
    """Simulate ``users`` over ``days`` from ``start`` and write their turns and feedback
    to ``out`` through `LogWriter`. ``threshold``: treat parses below this confidence as
    not recognized (what a served model with that threshold logs)."""
    if users < 1 or days < 1:
        raise ConfigError("users and days must be at least 1")
    behaviour = behaviour or Behaviour()
    rng = np.random.default_rng(seed)
    arms = _models(models)
    world = _World(utterances, arms, threshold, rng)
    result = GeneratedLog(Path(out), days=days)
    experiment = "model" if len(arms) == 2 else None
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    with LogWriter(out, flush_rows=5000) as writer:
        for u in range(users):
            user = f"user-{seed}-{u:05d}"
            turns_before = result.turns
            a = _arm_of(user, len(arms))
            model = arms[a]
            activity = rng.gamma(2.0, behaviour.sessions_per_day / 2)
            likes = rng.dirichlet(np.full(len(world.domains), 0.5)) * 0.7 + world.domain_share * 0.3
            channel = "wyoming" if rng.random() < 0.3 else "http"
            for d in range(days):
                for s in range(rng.poisson(activity)):
                    session = f"{user}-{d}-{s}"
                    now = origin + timedelta(
                        days=d, hours=int(rng.choice(24, p=_HOURS)), seconds=rng.uniform(0, 3600)
                    )
                    for _ in range(int(rng.geometric(1 / behaviour.turns_per_session))):
                        domain = world.domains[int(rng.choice(len(world.domains), p=likes))]
                        pool = world.by_domain[domain]
                        i = int(pool[rng.integers(len(pool))])
                        now = _speak(writer, world, model, a, i, now, user, session, channel,
                                     experiment, behaviour, rng, result)  # fmt: skip
                        now += timedelta(seconds=float(rng.lognormal(np.log(20), 0.6)))
            result.users += result.turns > turns_before
    result.files = len(list(Path(out).glob("*/date=*/part-*.parquet")))
    return result


def _speak(
    writer: LogWriter,
    world: _World,
    model: ModelArm,
    a: int,
    i: int,
    now: datetime,
    user: str,
    session: str,
    channel: str,
    experiment: str | None,
    b: Behaviour,
    rng: np.random.Generator,
    result: GeneratedLog,
) -> datetime:
    """One utterance and whatever follows it (feedback, rephrases); returns the time of
    the last thing the user said."""
    for attempt in range(b.max_rephrases + 1):
        parse = world.parses[a][i]
        right = bool(world.right[a][i])
        latency, parse_ms = _latency(rng, model, b.tail)
        turn = Turn(
            turn_id=_turn_id(rng),
            timestamp=now,
            text=world.texts[i],
            parse=parse,
            model_version=model.model_version,
            locale=world.utterances[i % world.n].locale,
            user_id=user,
            session_id=session,
            experiment=experiment,
            arm=model.arm if experiment else None,
            latency_ms=float(latency),
            parse_ms=float(parse_ms),
            channel=channel,
        )
        writer.append_turn(turn)
        result.turns += 1
        result.wrong += not right

        def feedback(kind: str, value: float, after: float, turn: Turn = turn) -> None:
            when = turn.timestamp + timedelta(seconds=after)
            writer.append_feedback(Feedback(turn.turn_id, when, kind, value, user))
            result.feedback += 1

        if rng.random() < (b.barge_in_right if right else b.barge_in_wrong):
            feedback("barge_in", 1.0, float(rng.uniform(0.3, 2.0)))
        if rng.random() < b.rating:
            stars = (
                rng.choice([4, 5], p=[0.3, 0.7])
                if right
                else rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
            )
            feedback("rating", (float(stars) - 1) / 4, float(rng.uniform(5, 60)))
        if rng.random() < b.task_success:
            feedback("task_success", 1.0 if right and rng.random() < 0.97 else 0.0,
                     float(rng.uniform(10, 40)))  # fmt: skip
        if right:
            return now
        if attempt < b.max_rephrases and rng.random() < b.rephrase:
            i, kind = world.rephrase_of(i, rng, b)
            result.rephrase_kinds[turn.turn_id] = kind
            now = now + timedelta(seconds=float(rng.uniform(2, 8)))
            continue
        if rng.random() < b.abandon_after_failure:
            feedback("abandonment", 1.0, float(rng.uniform(3, 15)))
        return now
    return now


# --- the fast, vectorised generator ---------------------------------------------------
def _column_of(parses: Sequence[Parse], texts: Sequence[str]) -> dict[str, pa.Array]:
    """Per-utterance Arrow arrays of the parse columns (taken row-wise later)."""
    rows = []
    for p, text in zip(parses, texts, strict=True):
        turn = Turn(turn_id="", timestamp=datetime(2000, 1, 1, tzinfo=UTC), text=text,
                    parse=p, model_version="")  # fmt: skip
        rows.append(turn_row(turn))
    names = ("text", "locale", "intent", "confidence", "top_intent", "ranking", "second_intent",
             "slots", "domain")  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=TURN_SCHEMA).select(list(names))
    return {n: table.column(n).combine_chunks() for n in names}


def generate_log_fast(
    out: str | Path,
    utterances: Sequence[Utterance],
    models: ModelArm | Sequence[ModelArm],
    *,
    turns: int = 1_000_000,
    users: int | None = None,
    days: int = 30,
    start: date = date(2026, 11, 1),
    behaviour: Behaviour | None = None,
    threshold: float | None = None,
    seed: int = 0,
    files_per_day: int = 1,
) -> GeneratedLog:
    """About ``turns`` turns (first utterances plus rephrases) over ``days``, drawn with
    numpy and written as day partitions in the writer's schema. Each distinct utterance is
    parsed once per model."""
    if turns < 1 or days < 1:
        raise ConfigError("turns and days must be at least 1")
    behaviour = behaviour or Behaviour()
    rng = np.random.default_rng(seed)
    arms = _models(models)
    world = _World(utterances, arms, threshold, rng)
    n_utt = world.n  # first utterances come from the corpus; edits only as rephrases
    users = users or max(1, turns // 60)
    experiment = "model" if len(arms) == 2 else None
    columns = [_column_of(world.parses[a], world.texts) for a in range(len(arms))]
    similar = np.array(world.similar)
    intent_pool = {k: np.array(v) for k, v in world.by_intent.items()}
    gold_of = [world.utterances[i].intent or "" for i in range(n_utt)]
    # Each user favours a few domains: utterance weights per user group (64 groups keep
    # the sampling vectorised), mixed with the corpus' own domain shares.
    groups = 64
    domain_index = np.array([world.domains.index(u.domain or "(none)") for u in world.utterances])
    domain_size = np.bincount(domain_index, minlength=len(world.domains))
    group_weights = []
    for _ in range(groups):
        likes = rng.dirichlet(np.full(len(world.domains), 0.5)) * 0.7 + world.domain_share * 0.3
        w = likes[domain_index] / domain_size[domain_index]
        group_weights.append(w / w.sum())
    activity = rng.gamma(2.0, 1.0, users)
    activity /= activity.sum()
    wrong_rate = float(np.mean([1 - r.mean() for r in world.right]))
    base = max(1, round(turns / (1 + wrong_rate * behaviour.rephrase)))
    result = GeneratedLog(Path(out), days=days)
    spoke = np.zeros(users, bool)
    origin = np.datetime64(datetime(start.year, start.month, start.day), "us")
    per_day = np.bincount(rng.integers(0, days, base), minlength=days)
    sessions_so_far = 0
    for d in range(days):
        if per_day[d] == 0:
            continue
        # sessions of a geometric number of turns, lognormal gaps (median 20 s) between them
        k = rng.geometric(1 / behaviour.turns_per_session,
                          max(1, round(per_day[d] / behaviour.turns_per_session)))  # fmt: skip
        n = int(k.sum())
        first = np.cumsum(k) - k
        session = np.repeat(np.arange(sessions_so_far, sessions_so_far + len(k)), k)
        sessions_so_far += len(k)
        gaps = rng.lognormal(np.log(20), 0.6, n)
        gaps[first] = 0.0
        elapsed = np.cumsum(gaps)
        start_s = rng.choice(24, len(k), p=_HOURS) * 3600 + rng.uniform(0, 3600, len(k))
        # a session ends, rephrases (8 s at most) included, before midnight: every turn is
        # in its own day's partition (only a session longer than a day is cut at 23:59:59)
        length = elapsed[first + k - 1] - elapsed[first]
        start_s = np.clip(start_s, 0.0, np.maximum(_LAST_SECOND - length, 0.0))
        seconds = np.minimum(np.repeat(start_s, k) + elapsed - np.repeat(elapsed[first], k),
                             _LAST_SECOND)  # fmt: skip
        user = np.repeat(rng.choice(users, len(k), p=activity), k)
        group = user % groups
        utt = np.empty(n, np.int64)
        for g in np.unique(group):
            mask = group == g
            utt[mask] = rng.choice(n_utt, int(mask.sum()), p=group_weights[g])
        arm = (user % len(arms)) if len(arms) == 2 else np.zeros(n, np.int64)
        right = np.where(arm == 0, world.right[0][utt], world.right[-1][utt])
        reph = (~right) & (rng.random(n) < behaviour.rephrase)
        # the rephrase: a repeat, the edit of the utterance, or a paraphrase (the most
        # similar other utterance of the intent, or any one)
        r_idx = np.flatnonzero(reph)
        draw = rng.random(len(r_idx))
        kind = np.where(draw < behaviour.rephrase_repeat, 0,
                        np.where(draw < behaviour.rephrase_repeat + behaviour.rephrase_edit,
                                 1, 2))  # fmt: skip
        r_utt = np.where(kind == 0, utt[r_idx], np.where(kind == 1, utt[r_idx] + world.n,
                                                         similar[utt[r_idx]]))  # fmt: skip
        pick_any = (kind == 2) & (rng.random(len(r_idx)) >= behaviour.rephrase_most_similar)
        for j in np.flatnonzero(pick_any):
            pool = intent_pool[gold_of[int(utt[r_idx[j]])]]
            r_utt[j] = pool[rng.integers(len(pool))]
        all_user = np.concatenate([user, user[r_idx]])
        all_utt = np.concatenate([utt, r_utt])
        all_arm = np.concatenate([arm, arm[r_idx]])
        all_session = np.concatenate([session, session[r_idx]])
        retry = np.minimum(seconds[r_idx] + rng.uniform(2, 8, len(r_idx)), _LAST_SECOND + 8)
        all_sec = np.concatenate([seconds, retry])
        all_right = np.concatenate(
            [right, np.where(all_arm[n:] == 0, world.right[0][r_utt], world.right[-1][r_utt])]
        )
        m = len(all_utt)
        order = np.argsort(all_sec, kind="stable")
        position = np.empty(m, np.int64)
        position[order] = np.arange(m)
        all_user, all_utt, all_arm, all_sec, all_right, all_session = (
            x[order] for x in (all_user, all_utt, all_arm, all_sec, all_right, all_session)
        )
        ids = np.arange(result.turns, result.turns + m)
        turn_ids = _ids(seed, ids)
        names = np.array(["repeat", "edit", "paraphrase"])[kind]
        rephrased = turn_ids.take(pa.array(position[r_idx])).to_pylist()
        result.rephrase_kinds.update(zip(rephrased, names.tolist(), strict=True))
        ts = origin + np.timedelta64(d, "D") + (all_sec * 1e6).astype("timedelta64[us]")
        latency = np.empty(m)
        parse_ms = np.empty(m)
        for a, model in enumerate(arms):
            mask = all_arm == a
            latency[mask], parse_ms[mask] = _latency(rng, model, behaviour.tail, int(mask.sum()))
        table = _turn_table(columns, all_utt, all_arm, arms, experiment, turn_ids, ts,
                            all_user, all_session, seed, latency, parse_ms)  # fmt: skip
        day = (start + timedelta(days=d)).isoformat()
        folder = Path(out) / "turns" / f"date={day}"
        for part, chunk in enumerate(np.array_split(np.arange(m), files_per_day)):
            name = f"part-{seed:04d}-{d:04d}-{part:03d}.parquet"
            _write(folder / name, table.take(pa.array(chunk)))
            result.files += 1
        fb = _feedback_table(rng, behaviour, turn_ids, ts, all_right, all_user, seed)
        result.feedback += fb.num_rows
        _write(Path(out) / "feedback" / f"date={day}" / f"part-{seed:04d}-{d:04d}.parquet", fb)
        result.files += 1
        result.turns += m
        result.wrong += int((~all_right).sum())
        spoke[all_user] = True
    result.users = int(spoke.sum())
    return result


def _ids(seed: int, ids: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(f"g{seed}-"), pa.array(ids).cast(pa.string()), "")


def _user_names(seed: int, user: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(
        pa.scalar(f"user-{seed}-"), pa.array(user).cast(pa.string()), ""
    )


def _turn_table(
    columns: list[dict[str, pa.Array]],
    utt: np.ndarray,
    arm: np.ndarray,
    arms: list[ModelArm],
    experiment: str | None,
    turn_ids: pa.Array,
    ts: np.ndarray,
    user: np.ndarray,
    session: np.ndarray,
    seed: int,
    latency: np.ndarray,
    parse_ms: np.ndarray,
) -> pa.Table:
    m = len(utt)
    parsed: dict[str, pa.Array] = {}
    for name in columns[0]:
        if len(arms) == 1:
            parsed[name] = columns[0][name].take(pa.array(utt))
        else:  # rows of arm 1 take from the second model's parses
            order = np.argsort(arm, kind="stable")
            back = np.empty(m, np.int64)
            back[order] = np.arange(m)
            pieces = [columns[a][name].take(pa.array(utt[order][arm[order] == a]))
                      for a in range(len(arms))]  # fmt: skip
            parsed[name] = pa.concat_arrays(pieces).take(pa.array(back))
    sessions = pc.binary_join_element_wise(
        _user_names(seed, user), pa.array(session).cast(pa.string()), "-"
    )
    versions = np.array([a.model_version for a in arms], dtype=object)[arm]
    arm_names = np.array([a.arm for a in arms], dtype=object)[arm]
    data = {
        "schema_version": pa.array(np.full(m, SCHEMA_VERSION, np.int16)),
        "turn_id": turn_ids,
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "user_id": _user_names(seed, user),
        "session_id": sessions,
        **{
            k: parsed[k]
            for k in (
                "text",
                "locale",
                "intent",
                "confidence",
                "top_intent",
                "ranking",
                "second_intent",
                "slots",
                "domain",
            )
        },  # fmt: skip
        "model_version": pa.array(versions, pa.string()),
        "experiment": pa.array([experiment] * m, pa.string()),
        "arm": pa.array(arm_names if experiment else [None] * m, pa.string()),
        "action": pa.nulls(m, pa.string()),
        "propensity": pa.nulls(m, pa.float64()),
        "candidates": pa.nulls(m, pa.list_(pa.string())),
        "latency_ms": pa.array(latency),
        "parse_ms": pa.array(parse_ms),
        "channel": pa.array(np.where(user % 10 < 3, "wyoming", "http").astype(object), pa.string()),
    }
    return pa.table(data, schema=TURN_SCHEMA)


def _feedback_table(
    rng: np.random.Generator,
    b: Behaviour,
    turn_ids: pa.Array,
    ts: np.ndarray,
    right: np.ndarray,
    user: np.ndarray,
    seed: int,
) -> pa.Table:
    m = len(right)
    parts = []
    barge = rng.random(m) < np.where(right, b.barge_in_right, b.barge_in_wrong)
    parts.append((np.flatnonzero(barge), "barge_in", np.ones(int(barge.sum())), (0.3, 2.0)))
    rated = np.flatnonzero(rng.random(m) < b.rating)
    stars = np.where(right[rated], rng.choice([4, 5], len(rated), p=[0.3, 0.7]),
                     rng.choice([1, 2, 3], len(rated), p=[0.6, 0.3, 0.1]))  # fmt: skip
    parts.append((rated, "rating", (stars - 1) / 4, (5.0, 60.0)))
    judged = np.flatnonzero(rng.random(m) < b.task_success)
    parts.append((judged, "task_success", right[judged].astype(float), (10.0, 40.0)))
    # abandonment: wrong answers the user did not rephrase (approximately: any wrong answer)
    abandoned = np.flatnonzero(~right & (rng.random(m) < b.abandon_after_failure * 0.4))
    parts.append((abandoned, "abandonment", np.ones(len(abandoned)), (3.0, 15.0)))
    index = np.concatenate([p[0] for p in parts]).astype(np.int64)
    kinds = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in parts])
    values = np.concatenate([np.asarray(p[2], float) for p in parts])
    delay = np.concatenate([rng.uniform(p[3][0], p[3][1], len(p[0])) for p in parts])
    when = ts[index] + (delay * 1e6).astype("timedelta64[us]")
    return pa.table(
        {
            "schema_version": pa.array(np.full(len(index), SCHEMA_VERSION, np.int16)),
            "turn_id": turn_ids.take(pa.array(index)),
            "ts": pa.array(when, pa.timestamp("us", tz="UTC")),
            "kind": pa.array(kinds, pa.string()),
            "value": pa.array(values),
            "user_id": _user_names(seed, user[index]),
        },
        schema=FEEDBACK_SCHEMA,
    )


def _write(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)

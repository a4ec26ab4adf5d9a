"""Benchmark personalization: decision latency, regret on the simulator, OPE at scale, and
our off-policy estimators against Open Bandit Pipeline's.

1. **Latency**: one `choose` per turn (featurizing included) with 50 candidate actions and
   100 features, after 2,000 learning turns; wall-clock p50/p99, CPU-time p99 (the
   decision's own cost, without preemption by other processes), with the BLAS thread pool
   limited to one thread (what a server should do: a decision is far too small to gain
   from threads, and idle BLAS threads spinning on a busy machine cost milliseconds) and,
   for comparison, as it comes.
2. **Regret**: cumulative (pseudo-)regret of each policy on the `UserSimulator`, against
   the uniform policy and the best fixed action; a PNG if matplotlib is installed,
   otherwise the curve's points.
3. **OPE at scale**: 1,000,000 logged turns from the simulator under an exploring logging
   policy; value of a different target policy by every estimator (200 bootstrap
   resamples), wall time, and error against the exact simulated value.
4. **obp**: our IPS/SNIPS/DM/DR/switch-DR/DR-OS against obp's IPW/SNIPW/DM/DR/SwitchDR/DRos
   on obp's bundled Open Bandit Dataset sample (random behaviour policy, campaign "all",
   Bernoulli TS with the ZOZOTOWN prior as the evaluation policy), with the same
   reward-model predictions (obp's `RegressionModel`, logistic regression, 3-fold
   cross-fitting). obp 0.5.x needs Python < 3.11, so when it is not importable here the
   script runs it in another interpreter: ``--obp-python`` or ``$VOXLOOP_OBP_PYTHON``
   (default ``/tmp/obp-venv/bin/python``), exchanging arrays through an ``.npz`` file.
   Set one up with::

       python3.10 -m venv /tmp/obp-venv && /tmp/obp-venv/bin/pip install obp "matplotlib<3.8"

Run (about a minute and a half on 2 cores)::

    python benchmarks/bench_personalize.py [--quick] [--only latency,regret,ope,obp] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.personalize.bandits import EpsilonGreedy, LinearPolicy, LinearThompson, LinUCB
from voxloop.personalize.features import Featurizer
from voxloop.personalize.ope import LoggedFeedback, evaluate, fit_reward_model
from voxloop.personalize.simulator import ContextBatch, UserSimulator, softmax

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
FIGURES = Path(__file__).resolve().parent / "figures"  # committed: RESULTS.md shows them
SECTIONS = ("latency", "regret", "ope", "obp")


def policies(dim: int, shared_dim: int, seed: int) -> dict[str, Callable[[], LinearPolicy]]:
    """The policies benchmarked, each with its own generator."""
    shared = Featurizer(shared_dim, action_crosses=True)
    disjoint = Featurizer(dim)

    def rng() -> np.random.Generator:
        return np.random.default_rng(seed)

    return {
        "epsilon-greedy (0.05)": lambda: EpsilonGreedy(0.05, featurizer=disjoint, rng=rng()),
        "LinUCB (alpha 0.5)": lambda: LinUCB(0.5, featurizer=disjoint, rng=rng()),
        "LinUCB shared (alpha 0.5)": lambda: LinUCB(0.5, featurizer=shared, shared=True, rng=rng()),
        "Thompson (scale 0.3, 256 draws)": lambda: LinearThompson(
            0.3, featurizer=disjoint, rng=rng()
        ),
        "Thompson shared (scale 0.3)": lambda: LinearThompson(
            0.3, featurizer=shared, shared=True, rng=rng()
        ),
    }


def blas_limit() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# --------------------------------------------------------------------------- latency


def bench_latency(quick: bool) -> dict[str, Any]:
    n_actions, dim = 50, 100
    warm, measured = (500, 1000) if quick else (2000, 5000)
    sim = UserSimulator(n_users=500, n_actions=n_actions, seed=0)
    batch = sim.sample(warm + measured, np.random.default_rng(1))
    contexts = [sim.context(batch, i) for i in range(len(batch))]
    truth = sim.reward_probabilities(batch)
    coins = np.random.default_rng(2).random(len(batch))
    results: dict[str, Any] = {}
    print(
        f"\n## Decision latency ({n_actions} actions, {dim} features, after {warm} updates)\n\n"
        "One `choose` per turn, featurizing included. Wall time includes any preemption by "
        "other processes; CPU time is the decision's own cost.\n"
    )
    print(
        "| policy | p50 ms | p99 ms | p99 CPU ms | turns > 1 ms | p99 ms, default BLAS "
        "threads | update p50 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, make in policies(dim, shared_dim=dim, seed=0).items():
        policy = make()
        update_ms = []
        for t in range(warm):
            d = policy.choose(contexts[t], sim.actions)
            start = time.perf_counter()
            policy.update(contexts[t], d.action, float(coins[t] < truth[t, d.index]))
            update_ms.append((time.perf_counter() - start) * 1e3)
        row: dict[str, float] = {"update_p50_ms": float(np.percentile(update_ms, 50))}
        for label, limit in (("", blas_limit()), ("_default_blas", nullcontext())):
            with limit:
                wall, cpu = [], []
                for t in range(warm, warm + measured):
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    policy.choose(contexts[t], sim.actions)
                    cpu.append((time.thread_time() - start_cpu) * 1e3)
                    wall.append((time.perf_counter() - start) * 1e3)
            row[f"p50_ms{label}"] = float(np.percentile(wall, 50))
            row[f"p99_ms{label}"] = float(np.percentile(wall, 99))
            row[f"p99_cpu_ms{label}"] = float(np.percentile(cpu, 99))
            row[f"share_over_1ms{label}"] = float(np.mean(np.array(wall) > 1.0))
        results[name] = row
        print(
            f"| {name} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {row['p99_cpu_ms']:.3f} | "
            f"{row['share_over_1ms']:.1%} | {row['p99_ms_default_blas']:.3f} | "
            f"{row['update_p50_ms']:.3f} |"
        )
    return results


# --------------------------------------------------------------------------- regret


def bench_regret(quick: bool) -> dict[str, Any]:
    turns = 3000 if quick else 10_000
    sim = UserSimulator(n_users=100, n_actions=10, seed=0)
    best = sim.best_value()
    _, fixed = sim.best_fixed_action()
    uniform = sim.policy_value(lambda b: np.full((len(b), sim.n_actions), 1 / sim.n_actions))
    checkpoints = np.linspace(turns / 10, turns, 10).astype(int)
    curves: dict[str, np.ndarray] = {
        "uniform random": np.arange(1, turns + 1) * (best - uniform),
        "best fixed action": np.arange(1, turns + 1) * (best - fixed),
    }
    seconds: dict[str, float] = {}
    # a shared model needs room in its hashed space for the action crosses
    for name, make in policies(128, shared_dim=256, seed=0).items():
        policy = make()
        start = time.perf_counter()
        run = sim.run(policy, turns, np.random.default_rng(1))
        seconds[name] = time.perf_counter() - start
        curves[name] = np.cumsum(run.regret)
    print(
        f"\n## Regret on the simulator ({sim.n_actions} actions, {sim.n_users} users, "
        f"{turns} turns)\n\noracle value {best:.3f}, best fixed action {fixed:.3f}, "
        f"uniform {uniform:.3f}. Cumulative regret at each tenth of the run:\n"
    )
    print("| policy | " + " | ".join(str(c) for c in checkpoints) + " | 2nd half / 1st half |")
    print("|---|" + "---:|" * (len(checkpoints) + 1))
    for name, curve in curves.items():
        half = turns // 2
        ratio = (curve[-1] - curve[half - 1]) / curve[half - 1]
        points = " | ".join(f"{curve[c - 1]:.0f}" for c in checkpoints)
        print(f"| {name} | {points} | {ratio:.2f} |")
    plot = _plot_regret(curves, turns)
    print(f"\nplot: {plot}" if plot else "\n(matplotlib not installed: no plot, points above)")
    return {
        "turns": turns,
        "oracle_value": best,
        "best_fixed_value": fixed,
        "uniform_value": uniform,
        "checkpoints": checkpoints.tolist(),
        "cumulative_regret": {n: c[checkpoints - 1].tolist() for n, c in curves.items()},
        "run_seconds": seconds,
        "plot": str(plot) if plot else None,
    }


def _plot_regret(curves: dict[str, np.ndarray], turns: int) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        style = "--" if name in ("uniform random", "best fixed action") else "-"
        ax.plot(np.arange(1, turns + 1), curve, style, label=name)
    ax.set_xlabel("turn")
    ax.set_ylabel("cumulative regret")
    ax.set_ylim(0, max(c[-1] for n, c in curves.items() if n != "uniform random") * 1.1)
    ax.legend()
    ax.grid(alpha=0.3)
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / "personalize_regret.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- OPE at scale


def bench_ope(quick: bool) -> dict[str, Any]:
    n = 100_000 if quick else 1_000_000
    sim = UserSimulator(n_users=200, n_actions=10, seed=0)

    def logging(b: ContextBatch) -> np.ndarray:
        return 0.8 * softmax(sim.noisy_scores(b, 1.0, seed=1)) + 0.2 / sim.n_actions

    def target(b: ContextBatch) -> np.ndarray:
        return softmax(sim.noisy_scores(b, 0.7, seed=2), temperature=0.5)

    truth = sim.policy_value(target)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    batch = sim.sample(n, rng)
    actions, propensities, rewards = sim.log(batch, logging(batch), rng)
    pi = target(batch)
    simulate_s = time.perf_counter() - start
    start = time.perf_counter()
    q = fit_reward_model(sim.features(batch), actions, rewards, sim.n_actions, folds=2, rng=rng)
    model_s = time.perf_counter() - start
    start = time.perf_counter()
    log = LoggedFeedback(actions, propensities, rewards, pi, q)
    result = evaluate(log, n_bootstrap=200, rng=np.random.default_rng(1))
    ope_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(log, n_bootstrap=0)
    point_s = time.perf_counter() - start
    print(
        f"\n## Off-policy evaluation over {n:,} logged turns\n\n"
        f"true value of the target policy {truth:.4f} (logging policy "
        f"{sim.policy_value(logging):.4f}); ESS {result.ess:,.0f}, mean weight "
        f"{result.mean_weight:.4f}, max weight {result.max_weight:.1f}.\n"
        f"Wall time: simulate {simulate_s:.2f} s, reward model (ridge per action, 2-fold "
        f"cross-fit) {model_s:.2f} s, all estimators with 200 bootstrap resamples "
        f"{ope_s:.2f} s (point estimates alone {point_s:.2f} s).\n"
    )
    print("| estimator | estimate | error vs truth | 95% CI | CI covers truth |")
    print("|---|---:|---:|---|---|")
    rows = {}
    for name, e in result.estimates.items():
        covers = e.ci_low <= truth <= e.ci_high
        rows[name] = {
            "value": e.value,
            "error": e.value - truth,
            "ci": [e.ci_low, e.ci_high],
            "covers": covers,
        }
        print(
            f"| {name} | {e.value:.4f} | {e.value - truth:+.4f} | "
            f"[{e.ci_low:.4f}, {e.ci_high:.4f}] | {'yes' if covers else 'no'} |"
        )
    return {
        "n": n,
        "truth": truth,
        "ess": result.ess,
        "seconds": {
            "simulate": simulate_s,
            "reward_model": model_s,
            "estimators_with_bootstrap": ope_s,
            "point_estimates": point_s,
        },
        "estimates": rows,
    }


# --------------------------------------------------------------------------- obp

OBP_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import logging
logging.disable(logging.INFO)
import numpy as np
import obp
from obp.dataset import OpenBanditDataset
from obp.policy import BernoulliTS
from obp.ope import (OffPolicyEvaluation, RegressionModel, InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting, DirectMethod, DoublyRobust,
    SwitchDoublyRobust, DoublyRobustWithShrinkage)
from sklearn.linear_model import LogisticRegression

out, tau, lam = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ds = OpenBanditDataset(behavior_policy="random", campaign="all")
fb = ds.obtain_batch_bandit_feedback()
ts = BernoulliTS(n_actions=ds.n_actions, len_list=ds.len_list, is_zozotown_prior=True,
                 campaign="all", random_state=12345)
action_dist = ts.compute_batch_action_dist(n_sim=100000, n_rounds=fb["n_rounds"])
model = RegressionModel(n_actions=ds.n_actions, len_list=ds.len_list,
                        action_context=ds.action_context,
                        base_model=LogisticRegression(max_iter=10000, C=100, random_state=12345))
q = model.fit_predict(context=fb["context"], action=fb["action"], reward=fb["reward"],
                      position=fb["position"], pscore=fb["pscore"], n_folds=3,
                      random_state=12345)
estimators = [InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting(),
              DirectMethod(), DoublyRobust(), SwitchDoublyRobust(lambda_=tau),
              DoublyRobustWithShrinkage(lambda_=lam)]
ope = OffPolicyEvaluation(bandit_feedback=fb, ope_estimators=estimators)
values = ope.estimate_policy_values(action_dist=action_dist, estimated_rewards_by_reg_model=q)
intervals = ope.estimate_intervals(action_dist=action_dist, estimated_rewards_by_reg_model=q,
                                   n_bootstrap_samples=1000, random_state=12345)
np.savez(out + ".npz", action=fb["action"], position=fb["position"], reward=fb["reward"],
         pscore=fb["pscore"], action_dist=action_dist, q=q)
with open(out + ".json", "w") as f:
    json.dump({"obp_version": obp.__version__, "python": sys.version.split()[0],
               "n_rounds": int(fb["n_rounds"]), "n_actions": int(fb["n_actions"]),
               "len_list": int(ds.len_list),
               "values": {k: float(v) for k, v in values.items()},
               "intervals": {k: {kk: float(vv) for kk, vv in v.items()}
                             for k, v in intervals.items()}}, f)
"""

#: obp estimator name -> ours.
OBP_NAMES = {
    "ipw": "ips",
    "snipw": "snips",
    "dm": "dm",
    "dr": "dr",
    "switch-dr": "switch",
    "dr-os": "dros",
}


def _obp_python(explicit: str | None) -> str | None:
    try:
        import obp  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    candidate = explicit or os.environ.get("VOXLOOP_OBP_PYTHON") or "/tmp/obp-venv/bin/python"
    return candidate if Path(candidate).is_file() else None


def bench_obp(obp_python: str | None) -> dict[str, Any]:
    print("\n## Against Open Bandit Pipeline (obp) on its Open Bandit Dataset sample\n")
    python = _obp_python(obp_python)
    if python is None:
        message = (
            "SKIPPED: obp is not importable here and no obp interpreter was found (obp 0.5.x "
            "needs Python < 3.11; create /tmp/obp-venv with Python 3.10 and `pip install obp "
            "'matplotlib<3.8'`, or pass --obp-python)"
        )
        print(message)
        return {"skipped": message}
    tau = lam = 10.0
    with tempfile.TemporaryDirectory() as tmp:
        base = str(Path(tmp) / "obd")
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-c", OBP_SCRIPT, base, str(tau), str(lam)],
            capture_output=True,
            text=True,
        )
        obp_s = time.perf_counter() - start
        if done.returncode != 0:
            message = f"SKIPPED: obp run failed in {python}:\n{done.stderr[-2000:]}"
            print(message)
            return {"skipped": message}
        meta = json.loads(Path(base + ".json").read_text())
        with np.load(base + ".npz", allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    n = len(data["action"])
    rows = np.arange(n)
    log = LoggedFeedback(
        actions=data["action"],
        propensities=data["pscore"],
        rewards=data["reward"],
        target=data["action_dist"][rows, :, data["position"]],
        predictions=data["q"][rows, :, data["position"]],
    )
    start = time.perf_counter()
    ours = evaluate(log, n_bootstrap=1000, tau=tau, lam=lam, rng=np.random.default_rng(12345))
    ours_s = time.perf_counter() - start
    print(
        f"obp {meta['obp_version']} (Python {meta['python']}, run in {python}); "
        f"{meta['n_rounds']:,} rounds, {meta['n_actions']} actions, {meta['len_list']} "
        f"positions; evaluation policy Bernoulli TS (ZOZOTOWN prior); the same reward-model "
        f"predictions on both sides; switch tau = DR-OS lambda = {tau:g}. obp run "
        f"(incl. model fit) {obp_s:.1f} s; ours with 1000 bootstrap resamples {ours_s:.2f} s.\n"
    )
    print("| estimator (obp / ours) | obp | ours | abs. difference | obp 95% CI | our 95% CI |")
    print("|---|---:|---:|---:|---|---|")
    out: dict[str, Any] = {"obp_version": meta["obp_version"], "n_rounds": meta["n_rounds"]}
    for theirs, mine in OBP_NAMES.items():
        v_obp = meta["values"][theirs]
        e = ours[mine]
        ci = meta["intervals"][theirs]
        low, high = ci["95.0% CI (lower)"], ci["95.0% CI (upper)"]
        out[mine] = {
            "obp": v_obp,
            "ours": e.value,
            "abs_diff": abs(e.value - v_obp),
            "obp_ci": [low, high],
            "our_ci": [e.ci_low, e.ci_high],
        }
        print(
            f"| {theirs} / {mine} | {v_obp:.8f} | {e.value:.8f} | {abs(e.value - v_obp):.1e} | "
            f"[{low:.6f}, {high:.6f}] | [{e.ci_low:.6f}, {e.ci_high:.6f}] |"
        )
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--obp-python", default=None, help="a Python interpreter with obp")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_classical import machine

    print(
        f"# bench_personalize — {time.strftime('%Y-%m-%d %H:%M')}, {machine()} "
        f"(load average {load:.1f}), numpy {np.__version__}"
    )
    results: dict[str, Any] = {}
    if "latency" in sections:
        results["latency"] = bench_latency(args.quick)
    if "regret" in sections:
        results["regret"] = bench_regret(args.quick)
    if "ope" in sections:
        results["ope"] = bench_ope(args.quick)
    if "obp" in sections:
        results["obp"] = bench_obp(args.obp_python)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

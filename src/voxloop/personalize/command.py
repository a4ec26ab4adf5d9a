"""``voxloop ope``: what a response policy would have been worth, from the turn log.

Wired into ``voxloop.cli`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from voxloop.errors import ConfigError, option_names
from voxloop.log.command import LOG_RANGE_OPTIONS, add_log_range

__all__ = ["register"]


def _number(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 6)


def cmd_ope(args: argparse.Namespace) -> int:
    from voxloop.personalize.bandits import load_policy
    from voxloop.personalize.from_log import evaluate_log
    from voxloop.personalize.ope import check_estimators

    estimators = [e.strip() for e in args.estimators.split(",")] if args.estimators else None
    options = {**LOG_RANGE_OPTIONS, "n_bootstrap": "--bootstrap", "level": "--level",
               "estimators": "--estimators"}  # fmt: skip
    with option_names(options):
        check_estimators(estimators or ())  # before the policy and the log are read
    if args.default_reward is not None and not 0 <= args.default_reward <= 1:
        raise ConfigError(f"must be in [0, 1], got {args.default_reward}", key="--default-reward")
    policy = load_policy(args.policy)
    with option_names(options):
        result, decisions = evaluate_log(
            args.log,
            policy,
            since=args.since,
            until=args.until,
            default_reward=args.default_reward,
            arm=args.arm,
            estimators=estimators,
            n_bootstrap=args.bootstrap,
            level=args.level,
            seed=args.seed,
        )
    if args.json:
        out = {
            "policy": str(args.policy),
            "turns": result.n,
            "turns_without_reward": decisions.without_reward,
            "logged_value": _number(decisions.logged_value),
            "ess": _number(result.ess),
            "mean_weight": _number(result.mean_weight),
            "max_weight": _number(result.max_weight),
            "level": result.level,
            "estimates": {
                name: {
                    "value": _number(e.value),
                    "std_error": _number(e.std_error),
                    "ci_low": _number(e.ci_low),
                    "ci_high": _number(e.ci_high),
                }
                for name, e in result.estimates.items()
            },  # fmt: skip
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"policy {args.policy} ({type(policy).__name__}) on {result.n:,} logged decisions "
          f"({decisions.without_reward:,} left out without a reward)")  # fmt: skip
    print(f"logged policy's value: {decisions.logged_value:.4f}")
    print(f"effective sample size {result.ess:,.0f}; importance weights: mean "
          f"{result.mean_weight:.3f} (about 1 when propensities are right), max "
          f"{result.max_weight:.3g}")  # fmt: skip
    print(f"\n{'estimator':<10} {'value':>8}  {int(result.level * 100)}% interval")
    for name, e in result.estimates.items():
        print(f"{name:<10} {e.value:>8.4f}  [{e.ci_low:.4f}, {e.ci_high:.4f}]")
    return 0


def register(sub: Any) -> None:
    """Add ``ope`` to the ``voxloop`` command's subparsers."""
    p = sub.add_parser("ope", help="off-policy evaluation of a saved policy on a turn log")
    add_log_range(p)
    p.add_argument("--policy", required=True, help="saved policy directory (policy.json)")
    p.add_argument("--arm", help="only the turns of this experiment arm")
    p.add_argument("--estimators", help="comma-separated (default: all): ips,snips,dm,dr,...")
    p.add_argument("--default-reward", type=float,
                   help="reward of a turn with no feedback (default: leave it out)")  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (200)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_ope)

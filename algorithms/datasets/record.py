"""Recording datasets: roll out a saved policy, a random policy or an epsilon mixture of the two
in any registered environment, natively under jit/vmap, into a Vault of whole episodes.

Each call of the episode recorder ("a wave") runs `num_envs` new episodes to their end in one
jitted `lax.scan`; wave `w` uses the key `fold_in(PRNGKey(seed), w)`, so every episode is a
pure function of the seed and its index. A wave is committed to the vault in one atomic append,
so readers only ever see whole episodes, and re-running the same command continues where an
interrupted run stopped (or extends the dataset to a larger `--episodes`) with exactly the
bytes an uninterrupted run writes.

Tiers: `good`, `medium`, `poor` are labels for policies stopped at different points of
training (the catalogue picks the checkpoints); `replay` records the whole training run: the
episodes are split evenly over every saved checkpoint of the run, in training order, each
acting as during training (sampled actions). That is the most honest replay we can produce
after the fact: the learners' jitted loops do not keep the transitions they trained on, so this
re-enacts the run at the resolution of its checkpoints (every evaluation interval when the run
was trained with `--checkpoint-keep` at least its number of evaluations).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.datasets.core import DATASET_LAYOUT, episode_table

TIERS = ("good", "medium", "poor", "replay")
#: Recording settings that must be equal when a run resumes into an existing vault.
_RESUME_KEYS = (
    "env_id",
    "policy",
    "epsilon",
    "seed",
    "tier",
    "num_envs",
    "greedy",
    "params",
    "run_index",
)


@dataclasses.dataclass(frozen=True)
class BehaviourPolicy:
    """A batched policy for the episode recorder and what to record about it.

    Attributes:
        env: the unwrapped environment it acts in.
        policy: `policy(key, timestep, policy_state, policy_input) -> (action, policy_state)`.
        init_state: `init_state(num_envs)`.
        inputs: per-checkpoint parameters stacked on a leading axis (None for random).
        num_policies: how many checkpoints are stacked (1 for a single policy).
        description: metadata about the policy (checkpoint steps and evaluation returns).
    """

    env: Any
    policy: Any
    init_state: Any
    inputs: Any
    num_policies: int
    description: dict


def _random_action(key, env, mask):
    """Uniform legal actions `(E, N)` (discrete) or uniform in the bounds `(E, N, dim)`."""
    import jax
    import jax.numpy as jnp

    from jaxmarl_envs.algorithms.training import action_info

    info = action_info(env)
    if info.continuous:
        low = jnp.where(jnp.isfinite(info.low), info.low, -1.0)
        high = jnp.where(jnp.isfinite(info.high), info.high, 1.0)
        shape = (mask.shape[0], *info.low.shape)
        return jax.random.uniform(key, shape, minval=low, maxval=high)
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def random_policy(env) -> BehaviourPolicy:
    """Uniformly random legal actions (continuous: uniform in the action bounds)."""

    def policy(key, ts, state, _inputs):
        return _random_action(key, env, ts.observation.action_mask), state

    return BehaviourPolicy(env, policy, lambda n: None, None, 1, {"kind": "random"})


def _checkpoint_steps(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    steps = (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    )
    if not steps:
        raise ValueError(f"{run}: no checkpoints/<step> folders to replay")
    return [folder / str(s) for s in steps]


def checkpoint_policy(
    checkpoint: str,
    which: str = "best",
    run_index: int = 0,
    greedy: bool | None = None,
    replay: bool = False,
) -> BehaviourPolicy:
    """A saved policy of any online family (`jaxmarl train` run folder or checkpoint folder).

    Args:
        checkpoint: run folder, `<run>/checkpoints/<step>` or `<run>/best/<step>`.
        which: for a run folder: "best" or "latest" parameters.
        run_index: which trained seed.
        greedy: argmax/mean actions; default the run's own evaluation mode (as `jaxmarl
            evaluate`), for `replay` sampled actions (as during training).
        replay: stack every `<run>/checkpoints/<step>` of the run (the replay tier).
    """
    import jax
    import jax.numpy as jnp

    from jaxmarl_envs.algorithms.train_cli import _find_run_dir, load_policy
    from jaxmarl_envs.wrappers import AgentID

    if replay:
        run = _find_run_dir(Path(checkpoint).absolute())
        paths = [str(p) for p in _checkpoint_steps(run)]
    else:
        paths = [checkpoint]
    loaded = [load_policy(p, which, run_index) for p in paths]
    learner = loaded[0][0]
    if greedy is None:
        greedy = False if replay else bool(learner.config.eval_greedy)
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[p for _, p, _ in loaded])
    add_id = isinstance(learner.eval_env, AgentID)
    n = learner.env.num_agents
    act = learner.act

    def view_of(ts):
        view = ts.observation.agents_view
        if add_id:
            eye = jnp.broadcast_to(jnp.eye(n, dtype=view.dtype), (view.shape[0], n, n))
            view = jnp.concatenate([view, eye], axis=-1)
        return view

    def policy(key, ts, hidden, inputs):
        params, index = inputs  # params stacked (K, ...), index (E,) checkpoint per episode
        view, mask, new = view_of(ts), ts.observation.action_mask, ts.first()
        if len(paths) == 1:
            one = jax.tree_util.tree_map(lambda x: x[0], params)
            return act(one, hidden, view, mask, new, key, greedy=greedy)

        def single(i, h, v, m, f, k):
            p = jax.tree_util.tree_map(lambda x: x[i], params)
            h1 = jax.tree_util.tree_map(lambda x: x[None], h)
            a, h2 = act(p, h1, v[None], m[None], f[None], k, greedy=greedy)
            return a[0], jax.tree_util.tree_map(lambda x: x[0], h2)

        keys = jax.random.split(key, view.shape[0])
        return jax.vmap(single)(index, hidden, view, mask, new, keys)

    description = {
        "kind": "replay" if replay else "checkpoint",
        "algorithm": learner.config.algorithm,
        "env_kwargs": dict(learner.config.env_kwargs),
        "greedy": bool(greedy),
        "checkpoints": [
            {
                "path": os.path.relpath(p) if not os.path.isabs(checkpoint) else p,
                "steps": meta.get("steps"),
                "eval_return": meta.get("mean_return"),
            }
            for p, (_, _, meta) in zip(paths, loaded, strict=True)
        ],
    }
    return BehaviourPolicy(
        learner.env, policy, learner.initial_hidden, stacked, len(paths), description
    )


def epsilon_mixture(behaviour: BehaviourPolicy, epsilon: float) -> BehaviourPolicy:
    """Each agent takes a uniformly random legal action with probability `epsilon` per step,
    else the behaviour policy's action."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if epsilon == 0.0:
        return behaviour
    import jax
    import jax.numpy as jnp

    inner, env = behaviour.policy, behaviour.env

    def policy(key, ts, state, inputs):
        k_pol, k_rand, k_coin = jax.random.split(key, 3)
        action, state = inner(k_pol, ts, state, inputs)
        rand = _random_action(k_rand, env, ts.observation.action_mask).astype(action.dtype)
        coin = jax.random.uniform(k_coin, action.shape[:2]) < epsilon
        coin = coin.reshape(coin.shape + (1,) * (action.ndim - 2))
        return jnp.where(coin, rand, action), state

    return dataclasses.replace(behaviour, policy=policy)


def _env_matches(env_id: str, behaviour: BehaviourPolicy, checkpoint: str) -> None:
    import jaxmarl_envs

    want = jaxmarl_envs.make(env_id)
    from jaxmarl_envs.algorithms.datasets.core import env_signature

    a, b = env_signature(want), env_signature(behaviour.env)
    if a != b:
        diffs = [
            f"{k}: {env_id} {a.get(k)}, policy's {b.get(k)}" for k in a if a.get(k) != b.get(k)
        ]
        raise ValueError(
            f"the policy {checkpoint} was trained on another environment than {env_id}: "
            + "; ".join(diffs)
        )


def _wave_policy_input(behaviour: BehaviourPolicy, first_episode: int, num_envs: int, total: int):
    """Stacked params and, per episode of the wave, which checkpoint acts (replay: episode
    `i` of `total` uses checkpoint `i * K // total`)."""
    if behaviour.inputs is None:
        return None
    idx = np.arange(first_episode, first_episode + num_envs)
    index = np.minimum(idx * behaviour.num_policies // max(total, 1), behaviour.num_policies - 1)
    return behaviour.inputs, index.astype(np.int32)


def record_dataset(
    env_id: str | None,
    policy: str,
    num_episodes: int,
    out: str | os.PathLike,
    epsilon: float = 0.0,
    seed: int = 0,
    tier: str | None = None,
    num_envs: int | None = None,
    greedy: bool | None = None,
    params: str = "best",
    run_index: int = 0,
    verbose: bool = False,
) -> dict:
    """Records (or resumes recording) `num_episodes` whole episodes into the vault `out`.

    Args:
        env_id: registered environment id (None: the checkpoint's own).
        policy: "random", or a run folder / checkpoint folder of `jaxmarl train`.
        num_episodes: episodes the vault holds when done.
        out: vault directory; if it exists with the same settings, recording continues.
        epsilon: per-agent, per-step probability of a uniformly random legal action.
        seed: PRNG seed.
        tier: quality label ("good", "medium", "poor", "replay" or any label); "replay"
            records every checkpoint of the run in `policy`.
        num_envs: episodes per wave (default `min(num_episodes, 64)`); fixed for a vault.
        greedy: for checkpoints, argmax/mean actions (default: the run's evaluation mode).
        params: for a run folder, "best" or "latest".
        run_index: which trained seed of the run.
        verbose: progress lines on stderr.

    Returns:
        A summary: path, episodes, steps, return statistics, whether it resumed.
    """
    import jax

    import jaxmarl_envs
    from jaxmarl_envs.algorithms.buffers.recorder import make_episode_recorder, return_statistics
    from jaxmarl_envs.algorithms.buffers.vault import Vault

    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(f"--episodes must be an int >= 1, got {num_episodes!r}")
    out = Path(out)
    if tier == "replay" and policy == "random":
        raise ValueError("the replay tier needs a training run folder as --policy, not random")
    if policy == "random":
        if env_id is None:
            raise ValueError("--env is required with --policy random")
        behaviour = random_policy(jaxmarl_envs.make(env_id))
    else:
        behaviour = checkpoint_policy(policy, params, run_index, greedy, replay=tier == "replay")
        saved = _policy_env_id(policy)
        if env_id is None:
            env_id = saved
        elif env_id != saved:
            # Another id with the same structure (e.g. a variant scenario): act there.
            _env_matches(env_id, behaviour, policy)
            behaviour = dataclasses.replace(behaviour, env=jaxmarl_envs.make(env_id))
    behaviour = epsilon_mixture(behaviour, float(epsilon))
    env = behaviour.env
    settings = {
        "env_id": env_id,
        "policy": policy,
        "epsilon": float(epsilon),
        "seed": int(seed),
        "tier": tier,
        "num_envs": None,
        "greedy": behaviour.description.get("greedy"),
        "params": params if policy != "random" else None,
        "run_index": int(run_index) if policy != "random" else None,
        # The policy seen from the vault, so that a folder holding both (a catalogue) can be
        # moved and resumed: `policy` as typed differs then, this resolves to the same place.
        "policy_relative": _relative(policy, out),
    }

    vault = None
    done = 0
    if out.exists():
        vault = Vault(out, mode="a")
        meta = vault.metadata
        stored = meta.get("recording", {})
        if num_envs is None:
            num_envs = stored.get("num_envs")
        settings["num_envs"] = num_envs
        diffs = [
            f"{k}: vault {stored.get(k)!r}, now {settings[k]!r}"
            for k in _RESUME_KEYS
            if stored.get(k) != settings[k]
            and not (k == "policy" and _same_policy_moved(stored, policy, out))
        ]
        if diffs:
            vault.close()
            raise ValueError(
                f"{out} exists with other recording settings ({'; '.join(diffs)}); use another "
                "--out or the same options to continue it"
            )
        if tier == "replay" and meta.get("num_episodes_target") != num_episodes:
            vault.close()
            raise ValueError(
                f"{out}: a replay dataset spreads its episodes over the checkpoints; it cannot "
                f"change --episodes ({meta.get('num_episodes_target')} -> {num_episodes})"
            )
        table = episode_table(vault)
        done = len(table)
        if vault.available_steps() > int(table.stop[-1] if done else 0):
            vault.close()
            raise ValueError(
                f"{out} holds steps after its last complete episode (not written by jaxmarl "
                "record?); refusing to append"
            )
    else:
        num_envs = int(num_envs or min(num_episodes, 64))
        settings["num_envs"] = num_envs
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"--num-envs must be an int >= 1, got {num_envs!r}")

    recorder = make_episode_recorder(env, behaviour.policy, behaviour.init_state, num_envs)
    example = jax.eval_shape(
        recorder.run,
        jax.random.PRNGKey(0),
        _wave_policy_input(behaviour, 0, num_envs, num_episodes),
    )[0]
    template = {k: v for k, v in example.items()}
    template["episode_id"] = jax.ShapeDtypeStruct((num_envs, 1), np.int32)
    empty = jax.tree_util.tree_map(lambda s: np.zeros((1, 0, *s.shape[2:]), s.dtype), template)
    resumed = vault is not None
    if vault is None:
        from jaxmarl_envs.algorithms.datasets.core import env_signature

        sig = env_signature(env)
        metadata = {
            "layout": DATASET_LAYOUT,
            "env_id": env_id,
            "tier": tier,
            "policy": behaviour.description,
            "recording": settings,
            "num_episodes_target": num_episodes,  # the replay split needs it when resuming
            **{k: list(v) if isinstance(v, tuple) else v for k, v in sig.items()},
        }
        if behaviour.num_policies > 1:
            # Replay: episode i of N is acted by checkpoint i * K // N.
            k, n = behaviour.num_policies, num_episodes
            bounds = [-(-j * n // k) for j in range(k + 1)]
            for j, entry in enumerate(metadata["policy"]["checkpoints"]):
                entry["episodes"] = [bounds[j], bounds[j + 1]]
        if sig["action_type"] == "continuous":
            from jaxmarl_envs.algorithms.training import action_info

            info = action_info(env)
            metadata["action_low"] = info.low.tolist()
            metadata["action_high"] = info.high.tolist()
        vault = Vault.create(out, empty, metadata=metadata)
    base_key = jax.random.PRNGKey(int(seed))
    total = num_episodes
    try:
        while done < total:
            wave, skip = divmod(done, num_envs)
            take = min(num_envs - skip, total - done)
            inputs = _wave_policy_input(behaviour, wave * num_envs, num_envs, total)
            trs, lengths = jax.device_get(recorder.run(jax.random.fold_in(base_key, wave), inputs))
            lengths = np.asarray(lengths)
            sel = range(skip, skip + take)
            chunk = jax.tree_util.tree_map(
                lambda x: np.concatenate([x[e, : lengths[e]] for e in sel])[None], trs
            )
            ids = np.concatenate([np.full(lengths[e], wave * num_envs + e, np.int32) for e in sel])
            chunk["episode_id"] = ids[None]
            vault.append(chunk)
            done += take
            if verbose:
                print(f"  {out}: {done}/{total} episodes", file=sys.stderr)
        table = episode_table(vault)
        stats = return_statistics(table.episode_return)
        stats.update(
            {f"p{q}": float(np.percentile(table.episode_return, q)) for q in (5, 25, 75, 95)}
        )
        steps = int(table.stop[-1]) if len(table) else 0
        vault.update_metadata(
            returns=stats,
            behaviour_return=stats.get("mean"),
            num_episodes=len(table),
            num_episodes_target=num_episodes,
            num_steps=steps,
            mean_episode_length=float(np.mean(table.length)) if len(table) else 0.0,
        )
    finally:
        vault.close()
    return {
        "path": str(out),
        "episodes": len(table),
        "steps": steps,
        "returns": stats,
        "resumed": resumed,
        "env_id": env_id,
    }


def _relative(policy: str, out: Path) -> str | None:
    """`policy`'s path relative to the vault folder `out` (None for `random`)."""
    if policy == "random":
        return None
    return os.path.relpath(Path(policy).absolute(), Path(out).absolute())


def _same_policy_moved(stored: dict, policy: str, out: Path) -> bool:
    """Whether the vault's recorded policy, found relative to where the vault is now, is the
    `policy` given now (the vault and its policy were moved together)."""
    rel = stored.get("policy_relative")
    if rel is None or policy == "random":
        return False
    return (Path(out).absolute() / rel).resolve() == Path(policy).resolve()


def _policy_env_id(checkpoint: str) -> str:
    from jaxmarl_envs.algorithms.config import load_config_dict
    from jaxmarl_envs.algorithms.train_cli import _find_run_dir

    run = _find_run_dir(Path(checkpoint).absolute())
    return load_config_dict(run / "config.json")["config"]["env_id"]

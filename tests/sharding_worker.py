"""The computations that the sharding tests run on 1 device, on 2 forced devices and in 2 processes.

``python sharding_worker.py devices OUT`` (under ``--xla_force_host_platform_device_count=2``),
``python sharding_worker.py process OUT PORT ID`` (one of two processes) or
``python sharding_worker.py resume OUT PORT ID RUN_DIR`` (one of two processes continuing a training run
with ``diffpg.train(RUN_DIR, resume=True)``) saves the results to OUT (npz).
"""
import sys

import jax
import numpy as np

ESTIMATORS = ("pathwise", "score_function", "zeroth_order", "alpha_order", "inverse_variance", "surrogate", "auto")


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


def estimator_gradients(names=ESTIMATORS, num_envs=16):
    """{name: flat gradient}, {name: whether the compiled program all-reduces}."""
    import diffpg

    env = diffpg.make("pendulum")
    policy = diffpg.policies.GaussianMLP(action_size=1, hidden=(8,))
    params = policy.init(jax.random.PRNGKey(0), env.observation_size)
    grads, reduces = {}, {}
    for name in names:
        estimate = jax.jit(getattr(diffpg.estimators, name)(env, policy, horizon=5, num_envs=num_envs))
        grads[name] = flat(estimate(jax.random.PRNGKey(1), params)[0])
        reduces[name] = "all-reduce" in estimate.lower(jax.random.PRNGKey(1), params).compile().as_text()
    return grads, reduces


def training_run():
    """Flat parameters after 2 apg updates of 4 environments, and whether the program all-reduces."""
    from diffpg.training import defaults, make_trainer

    config = defaults("pendulum", "apg").replace(num_envs=4, window=8, num_updates=2, hidden=(8,))
    trainer = make_trainer(config)
    state = trainer.init(jax.random.PRNGKey(0))
    text = trainer.run.lower(state, 2).compile().as_text()
    return flat(trainer.run(state, 2)[0].params), "all-reduce" in text


def resumed_run(run_dir):
    """``diffpg.train(run_dir, resume=True)`` in this process of the run: its final parameters, the number of
    metrics rows it returns and its policy's action for the zero observation."""
    import diffpg

    result = diffpg.train(run_dir, resume=True)
    action = result.act(np.zeros(result.trainer.env.observation_size, np.float32))
    return {"params": flat(result.params), "rows": len(result.metrics), "action": action}


def main(mode, out, *args):
    if mode == "resume":
        import diffpg.distributed

        port, process_id, run_dir = args
        diffpg.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(process_id))
        np.savez(out, processes=jax.process_count(), **resumed_run(run_dir))
        return
    if mode == "process":
        import diffpg.distributed

        port, process_id = args
        diffpg.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(process_id))
        grads, reduces = estimator_gradients(("pathwise", "score_function"))
        results = {"processes": jax.process_count(), "devices": jax.device_count(),
                   "local_devices": jax.local_device_count()}
    else:
        grads, reduces = estimator_gradients()
        results = {"devices": jax.device_count()}
        results["train"], results["train/all_reduce"] = training_run()
    for name in grads:
        results[name], results[f"{name}/all_reduce"] = grads[name], reduces[name]
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])

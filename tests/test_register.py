"""``diffpg.envs.register`` takes any environment that follows the protocol; ``make`` overrides only what it has.

The environment is a plain class, as the README's protocol describes one:
no dataclass, no ``params``, no base class.
"""
import jax
import jax.numpy as jnp
import pytest

import diffpg
from diffpg.errors import ConfigError


class Drone:
    """A planar point pushed by two thrusters: x'' = u − g e_y, reward −|x − target|²."""

    observation_size = 4
    action_size = 2
    gravity = 9.81

    def __init__(self):
        self.dt = 0.05

    def reset(self, key):
        return diffpg.State(obs=0.1 * jax.random.normal(key, (4,)), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        position, velocity = state.obs[:2], state.obs[2:]
        velocity = velocity + self.dt * (action - jnp.array([0.0, self.gravity]))
        position = position + self.dt * velocity
        return diffpg.State(obs=jnp.concatenate([position, velocity]), reward=-jnp.sum(position**2),
                            done=jnp.zeros(()))


@pytest.fixture
def registered_as():
    names = []

    def register(name, factory):
        names.append(name)
        diffpg.envs.register(name, factory)

    yield register
    for name in names:
        diffpg.envs.registry._REGISTRY.pop(name)


def test_a_plain_class_is_registered_and_made_with_overrides(registered_as):
    registered_as("test_drone", Drone)
    env = diffpg.make("test_drone", dt=0.01, gravity=1.62)
    assert isinstance(env, Drone) and (env.dt, env.gravity) == (0.01, 1.62)
    assert Drone.gravity == 9.81 and diffpg.make("test_drone").dt == 0.05  # the class and later builds are untouched
    state = env.step(env.reset(jax.random.PRNGKey(0)), jnp.array([0.0, 1.62]))
    assert state.obs.shape == (4,) and "test_drone" in diffpg.envs.registered()


def test_an_object_and_a_factory_register_too_and_the_object_is_never_changed(registered_as):
    drone = Drone()
    registered_as("test_drone_object", drone)
    registered_as("test_drone_factory", lambda: Drone())
    assert diffpg.make("test_drone_object") is drone
    assert diffpg.make("test_drone_object", dt=0.2).dt == 0.2 and drone.dt == 0.05
    assert isinstance(diffpg.make("test_drone_factory", gravity=0.0), Drone)


def test_an_override_the_env_lacks_is_refused_by_name(registered_as, assert_one_sentence):
    registered_as("test_drone", Drone)
    with pytest.raises(ConfigError) as e:
        diffpg.make("test_drone", mass=2.0, dt=0.1)
    message = assert_one_sentence(e, ConfigError, "test_drone has no setting mass", "it accepts")
    assert "dt" in message and "gravity" in message and "step" not in message  # methods are not settings


def test_a_factory_that_fails_and_a_bad_registration_are_one_sentence(registered_as, assert_one_sentence):
    def broken():
        raise RuntimeError("no calibration file")

    registered_as("test_broken", broken)
    with pytest.raises(ConfigError) as e:
        diffpg.make("test_broken")
    assert_one_sentence(e, ConfigError, "building the environment registered as 'test_broken' failed",
                        "RuntimeError: no calibration file")
    with pytest.raises(ConfigError) as e:
        diffpg.envs.register("test_number", 3)
    assert_one_sentence(e, ConfigError, "needs an environment, its class or a zero-argument factory")

"""The host-side half of ``from_gymnasium``: Gymnasium environment copies and the states handed out.

A black-box Gymnasium environment keeps its state inside a Python object,
while a diffpg state must be a value: ``step(s, a)`` may be called twice on
the same ``s`` (two branches of a rollout, or XLA running or merging a
callback more than once) and must give the same answer each time. So the
state names a *node* of a tree of histories, by an integer handle:

    root(seed)           the episode after ``reset(seed=seed)``
    child(node, action)  the episode after one more ``step(action)``

``step(node, action)`` is memoized: the first call steps the Gymnasium copy
parked at ``node`` (or, when another action already took it, a copy rebuilt
by replaying the node's actions from its seed) and parks it at the child;
a second call with the same node and action returns the stored child
without stepping anything. Likewise ``reset(seed)`` returns the root of
that seed. Both are then pure functions of their arguments, as
``jax.pure_callback`` requires, provided the Gymnasium environment itself is
deterministic given its seed and actions (Gymnasium's seeding contract).
A node whose episode has ended is its own child: stepping it changes nothing.

Memory is bounded: the ``history`` most recent nodes are kept, and copies
parked at nodes nobody continued are recycled for later resets. A state
older than that cannot be stepped again and says so.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, NamedTuple

import numpy as np

from ..errors import ConfigError


class Node(NamedTuple):
    parent: int | None   # None at a root
    seed: int            # the root's seed (also kept on every node)
    action: np.ndarray | None
    obs: np.ndarray
    reward: float
    done: bool


class HostEpisodes:
    """Gymnasium copies made by ``make_env`` and the history tree of the states handed out."""

    def __init__(self, make_env: Callable, history: int = 200_000, spare: int = 64):
        self.make_env, self.history, self.spare = make_env, history, spare
        self.nodes: OrderedDict[int, Node] = OrderedDict()
        self.children: dict[tuple[int, bytes], int] = {}
        self.roots: dict[int, int] = {}
        self.parked: OrderedDict[int, object] = OrderedDict()
        self.free: list = []
        self.envs_made = self.steps_taken = self.replayed_steps = 0
        self._next = 0
        self._lock = threading.Lock()

    # -- the two callbacks: a batch of requests each ------------------------------------------
    def reset(self, seeds: np.ndarray):
        """The root of each seed's episode: (handles, obs, rewards, dones), each shaped like ``seeds``."""
        seeds = np.asarray(seeds)  # the callback may hand over jax Arrays
        with self._lock:
            self.spare = max(self.spare, 2 * seeds.size)
            out = [self._root(int(s)) for s in seeds.reshape(-1)]
        return self._pack(out, seeds.shape)

    def step(self, handles: np.ndarray, actions: np.ndarray, low, high, dtype):
        """Step each node by its action, clipped to [low, high] and cast to ``dtype`` (the action space's)."""
        handles = np.asarray(handles)
        with self._lock:
            self.spare = max(self.spare, 2 * handles.size)
            actions = np.clip(actions.reshape(handles.size, -1), low, high).astype(dtype)
            out = [self._child(int(h), a) for h, a in zip(handles.reshape(-1), actions)]
        return self._pack(out, handles.shape)

    # -- the tree ------------------------------------------------------------------------------
    def _root(self, seed: int) -> tuple[int, Node]:
        handle = self.roots.get(seed)
        if handle is not None and handle in self.nodes:
            return handle, self.nodes[handle]
        env = self._take_env()
        obs, _ = env.reset(seed=seed)
        return self._add(Node(None, seed, None, np.asarray(obs), 0.0, False), env, root_seed=seed)

    def _child(self, handle: int, action: np.ndarray) -> tuple[int, Node]:
        node = self.nodes.get(handle)
        if node is None:
            raise ConfigError(f"this from_gymnasium state is older than the {self.history} steps kept host-side; "
                              "step states from a recent reset, or pass a larger history=")
        self.nodes.move_to_end(handle)  # recently used: a finished episode stepped on stays steppable
        if node.done:
            return handle, node._replace(reward=0.0)
        key = (handle, action.tobytes())
        child = self.children.get(key)
        if child is not None and child in self.nodes:
            return child, self.nodes[child]
        env = self.parked.pop(handle, None)
        if env is None:
            env = self._replay(handle)
        obs, reward, terminated, truncated, _ = env.step(action)
        self.steps_taken += 1
        out = self._add(Node(handle, node.seed, action.copy(), np.asarray(obs), float(reward),
                             bool(terminated or truncated)), env)
        self.children[key] = out[0]
        return out

    def _add(self, node: Node, env, root_seed: int | None = None) -> tuple[int, Node]:
        handle, self._next = self._next, self._next + 1
        self.nodes[handle] = node
        if root_seed is not None:
            self.roots[root_seed] = handle
        if node.done:
            self.free.append(env)
        else:
            self.parked[handle] = env
        while len(self.parked) > self.spare:
            self.free.append(self.parked.popitem(last=False)[1])
        while len(self.nodes) > self.history:
            old, gone = self.nodes.popitem(last=False)
            if gone.parent is None:
                self.roots.pop(gone.seed, None)
            else:
                self.children.pop((gone.parent, gone.action.tobytes()), None)
            parked = self.parked.pop(old, None)
            if parked is not None:
                self.free.append(parked)
        return handle, node

    def _take_env(self):
        if self.free:
            return self.free.pop()
        self.envs_made += 1
        return self.make_env()

    def _replay(self, handle: int):
        """A copy at ``handle``, rebuilt from its root's seed by replaying the actions that led there."""
        actions = []
        node = self.nodes[handle]
        while node.parent is not None:
            actions.append(node.action)
            if node.parent not in self.nodes:
                raise ConfigError(f"this from_gymnasium state's history is older than the {self.history} steps "
                                  "kept host-side; pass a larger history=")
            node = self.nodes[node.parent]
        env = self._take_env()
        env.reset(seed=node.seed)
        for action in reversed(actions):
            env.step(action)
        self.replayed_steps += len(actions)
        return env

    @staticmethod
    def _pack(out, shape):
        handles = np.array([h for h, _ in out], np.int32).reshape(shape)
        obs = np.stack([n.obs for _, n in out]).astype(np.float32).reshape(shape + (-1,))
        reward = np.array([n.reward for _, n in out], np.float32).reshape(shape)
        done = np.array([n.done for _, n in out], np.float32).reshape(shape)
        return handles, obs, reward, done

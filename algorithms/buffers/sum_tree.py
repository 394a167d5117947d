"""Array sum tree: batched priority updates and proportional sampling in O(log n), jittable."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class SumTree:
    """A complete binary tree stored as a flat array.

    Node 1 is the root, node `i` has children `2i` and `2i + 1`, and leaf `j` lives at
    `capacity + j`. Parents are recomputed from their children on every update (never
    incremented), so float error does not accumulate.

    Attributes:
        nodes: `(2 * capacity,)` float32 node sums (index 0 unused).
        capacity: static number of leaves, a power of two.
    """

    nodes: chex.Array
    capacity: int = struct.field(pytree_node=False)

    @property
    def depth(self) -> int:
        return self.capacity.bit_length() - 1

    @property
    def total(self) -> chex.Array:
        """`()` sum of all leaves."""
        return self.nodes[1]

    @property
    def leaves(self) -> chex.Array:
        """`(capacity,)` leaf values."""
        return self.nodes[self.capacity :]


def init(num_leaves: int) -> SumTree:
    """An all-zero tree with at least `num_leaves` leaves."""
    if num_leaves < 1:
        raise ValueError(f"a sum tree needs at least one leaf, got {num_leaves}.")
    capacity = 1 << (int(num_leaves) - 1).bit_length()
    return SumTree(nodes=jnp.zeros((2 * capacity,), jnp.float32), capacity=capacity)


def get(tree: SumTree, index: chex.Array) -> chex.Array:
    """Leaf values at `index` (any shape)."""
    return tree.nodes[tree.capacity + index]


def update(tree: SumTree, index: chex.Array, values: chex.Array) -> SumTree:
    """Sets leaves `index` (`(n,)`) to `values` (`(n,)`) and recomputes their ancestors.

    Indices outside `[0, capacity)` are ignored. When an index repeats, one of its values
    is kept (which one is unspecified, as for any XLA scatter).
    """
    index = jnp.asarray(index, jnp.int32)
    cap = tree.capacity
    node = jnp.where((index >= 0) & (index < cap), cap + index, 2 * cap)
    nodes = tree.nodes.at[node].set(jnp.asarray(values, jnp.float32), mode="drop")
    for _ in range(tree.depth):
        node = node // 2
        valid = node < cap
        safe = jnp.where(valid, node, 1)
        sums = nodes[2 * safe] + nodes[2 * safe + 1]
        nodes = nodes.at[jnp.where(valid, node, 2 * cap)].set(sums, mode="drop")
    return tree.replace(nodes=nodes)


def find(tree: SumTree, u: chex.Array) -> chex.Array:
    """Leaf indices (shape of `u`) whose cumulative-sum interval contains `u`.

    The descent never enters a subtree whose sum is zero while its sibling is positive, so
    a zero leaf is never returned when the total is positive, even when `u` reaches (or,
    through float rounding, passes) the total.
    """
    u = jnp.asarray(u, jnp.float32)
    node = jnp.ones(u.shape, jnp.int32)
    for _ in range(tree.depth):
        left = tree.nodes[2 * node]
        right = tree.nodes[2 * node + 1]
        go_right = ((u >= left) & (right > 0)) | (left <= 0)
        u = jnp.where(go_right, u - left, u)
        node = 2 * node + go_right.astype(jnp.int32)
    return node - tree.capacity


def sample(tree: SumTree, key: chex.PRNGKey, n: int) -> chex.Array:
    """`(n,)` leaf indices drawn i.i.d. with probability `leaf / total` (see `find`)."""
    return find(tree, jax.random.uniform(key, (n,), jnp.float32) * tree.total)


def total(tree: SumTree) -> chex.Array:
    """`()` sum of all leaves."""
    return tree.total

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
    is kept (which one is unspecified, as for any XLA scatter). On CPU, small batches walk
    the leaves one after another in a `lax.scan` (fewer, cheaper ops); elsewhere all leaves
    move up the tree together. Both give the same tree.
    """
    index = jnp.asarray(index, jnp.int32).reshape(-1)
    values = jnp.broadcast_to(jnp.asarray(values, jnp.float32).reshape(-1), index.shape)
    if index.shape[0] <= SEQUENTIAL_MAX and jax.default_backend() == "cpu":
        return _update_sequential(tree, index, values)
    return _update_levels(tree, index, values)


#: Largest batch `update` walks leaf by leaf on CPU.
SEQUENTIAL_MAX = 2048


def _update_levels(tree: SumTree, index: chex.Array, values: chex.Array) -> SumTree:
    cap = tree.capacity
    node = jnp.where((index >= 0) & (index < cap), cap + index, 2 * cap)
    nodes = tree.nodes.at[node].set(values, mode="drop")
    for _ in range(tree.depth):
        node = node // 2
        valid = node < cap
        safe = jnp.where(valid, node, 1)
        sums = nodes[2 * safe] + nodes[2 * safe + 1]
        nodes = nodes.at[jnp.where(valid, node, 2 * cap)].set(sums, mode="drop")
    return tree.replace(nodes=nodes)


def _update_sequential(tree: SumTree, index: chex.Array, values: chex.Array) -> SumTree:
    cap = tree.capacity

    def up(_, carry):
        nodes, node = carry
        node = node // 2
        pair = jax.lax.dynamic_slice_in_dim(nodes, 2 * node, 2)
        return jax.lax.dynamic_update_index_in_dim(nodes, pair[0] + pair[1], node, 0), node

    def one(nodes, item):
        i, v = item
        ok = (i >= 0) & (i < cap)
        node = cap + jnp.where(ok, i, 0)
        old = jax.lax.dynamic_index_in_dim(nodes, node, keepdims=False)
        nodes = jax.lax.dynamic_update_index_in_dim(nodes, jnp.where(ok, v, old), node, 0)
        # Recomputing the path of an ignored index rewrites the sums it already holds.
        nodes, _ = jax.lax.fori_loop(0, tree.depth, up, (nodes, node))
        return nodes, None

    nodes, _ = jax.lax.scan(one, tree.nodes, (index, values))
    return tree.replace(nodes=nodes)


def find(tree: SumTree, u: chex.Array) -> chex.Array:
    """Leaf indices (shape of `u`) whose cumulative-sum interval contains `u`.

    The descent never enters a subtree whose sum is zero while its sibling is positive, so
    a zero leaf is never returned when the total is positive, even when `u` reaches (or,
    through float rounding, passes) the total.
    """
    u = jnp.asarray(u, jnp.float32)
    nodes = tree.nodes

    def down(_, carry):
        node, u = carry
        left = nodes[2 * node]
        right = nodes[2 * node + 1]
        go_right = ((u >= left) & (right > 0)) | (left <= 0)
        return 2 * node + go_right.astype(jnp.int32), jnp.where(go_right, u - left, u)

    # A loop (not unrolled) keeps XLA from fusing the whole descent into every consumer of
    # the result (e.g. recomputing it per gathered element).
    node, _ = jax.lax.fori_loop(0, tree.depth, down, (jnp.ones(u.shape, jnp.int32), u))
    return node - tree.capacity


def sample(tree: SumTree, key: chex.PRNGKey, n: int) -> chex.Array:
    """`(n,)` leaf indices drawn i.i.d. with probability `leaf / total` (see `find`)."""
    return find(tree, jax.random.uniform(key, (n,), jnp.float32) * tree.total)


def total(tree: SumTree) -> chex.Array:
    """`()` sum of all leaves."""
    return tree.total

"""Pure-functional replay buffers (flat, item, trajectory, prioritised, queue, mixer), the
on-disk Vault and the experience recorder."""

from jaxmarl_envs.algorithms.buffers import sum_tree
from jaxmarl_envs.algorithms.buffers.flat import (
    FlatBuffer,
    PrioritisedTransitionSample,
    TransitionSample,
    make_flat_buffer,
    make_prioritised_flat_buffer,
)
from jaxmarl_envs.algorithms.buffers.item import (
    ItemBuffer,
    ItemSample,
    PrioritisedItemSample,
    make_item_buffer,
    make_prioritised_item_buffer,
)
from jaxmarl_envs.algorithms.buffers.mixer import MixedSample, Mixer, make_mixer
from jaxmarl_envs.algorithms.buffers.prioritised import (
    PrioritisedTrajectoryBuffer,
    PrioritisedTrajectoryBufferState,
    PrioritisedTrajectorySample,
    make_prioritised_trajectory_buffer,
)
from jaxmarl_envs.algorithms.buffers.queue import (
    QueueSample,
    TrajectoryQueue,
    TrajectoryQueueState,
    make_trajectory_queue,
)
from jaxmarl_envs.algorithms.buffers.trajectory import (
    TrajectoryBuffer,
    TrajectoryBufferState,
    TrajectorySample,
    make_trajectory_buffer,
)

__all__ = [
    "FlatBuffer",
    "ItemBuffer",
    "ItemSample",
    "MixedSample",
    "Mixer",
    "PrioritisedItemSample",
    "PrioritisedTrajectoryBuffer",
    "PrioritisedTrajectoryBufferState",
    "PrioritisedTrajectorySample",
    "PrioritisedTransitionSample",
    "QueueSample",
    "TrajectoryBuffer",
    "TrajectoryBufferState",
    "TrajectoryQueue",
    "TrajectoryQueueState",
    "TrajectorySample",
    "TransitionSample",
    "make_flat_buffer",
    "make_item_buffer",
    "make_mixer",
    "make_prioritised_flat_buffer",
    "make_prioritised_item_buffer",
    "make_prioritised_trajectory_buffer",
    "make_trajectory_buffer",
    "make_trajectory_queue",
    "sum_tree",
]

"""Adapters exposing jaxmarl_envs environments to dm-env, Gymnasium and PettingZoo.

Importing this package registers every environment id with Gymnasium as
`jaxmarl_envs/<id>-v0` (see `jaxmarl_envs.adapters.gymnasium`).
"""

from jaxmarl_envs.adapters import gymnasium, pettingzoo
from jaxmarl_envs.adapters.dm_env import DmEnv
from jaxmarl_envs.adapters.gymnasium import JaxMarlGymEnv, JaxMarlVectorEnv, gymnasium_id
from jaxmarl_envs.adapters.pettingzoo import JaxMarlParallelEnv, aec_env, parallel_env

__all__ = [
    "DmEnv",
    "JaxMarlGymEnv",
    "JaxMarlParallelEnv",
    "JaxMarlVectorEnv",
    "aec_env",
    "gymnasium",
    "gymnasium_id",
    "parallel_env",
    "pettingzoo",
]

"""Adapters exposing jaxmarl_envs environments to dm-env, Gymnasium and PettingZoo."""

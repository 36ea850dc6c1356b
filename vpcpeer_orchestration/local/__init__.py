"""The embedded default: a local AWS (moto server), emulated rollout, flow-log emulator."""

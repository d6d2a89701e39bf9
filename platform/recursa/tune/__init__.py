"""Ray Tune: population-based training of the gift policy, ASHA over the tool-calling TRM, leaderboards."""


class TuneInterrupted(RuntimeError):
    """A Tune run stopped before every trial finished (Ctrl-C, or the driver lost); `--resume` goes on."""

"""mixinvert: audio mixing inversion.

Given the raw tracks of a song and its stereo mixdown, recover how the mix was made
(per track: gain, EQ, compression, pan, reverb) as console settings a person can read,
change and re-render. See :mod:`mixinvert.api` for the functions behind the CLI.
"""

__version__ = "0.1.0"

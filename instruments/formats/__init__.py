"""Export formats: one module per format, each with its writer and its reader.

Every reader returns :class:`~instruments.raw.RawData` in the normalised raw layout;
every writer takes it, so any export can be made from simulated answers.
"""

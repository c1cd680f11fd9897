"""A run's scalars, in one place: the TensorBoard event files Guild reads
them from.

- ``writer``: the supervisor's ``ScalarWriter`` (``key: value`` output
  lines recorded as events);
- ``tfrecord``: the event files' records, decoded (and their CRCs
  computed) by hand, without protobuf;
- ``reader``: every viewer's latest values and series, read incrementally
  through one cache per process;
- ``cache_file``: that cache kept between processes
  (``cache/guild_jupyter/scalars.json``).
"""

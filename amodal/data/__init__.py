"""What trainers and evaluators read: seeded synthetic streams (:mod:`~amodal.data.streams`), the real-depth
Middlebury yardstick (:mod:`~amodal.data.middlebury`), and the one way to open data by name
(:mod:`~amodal.data.items`: ``synth``, ``middlebury``, our shards, the official layout)."""

"""Supervision: lexicon policies flag conversations at ingest (and by backfill) into a review
queue that reviewers work through, with a record that proves the supervision happened.
See docs/supervision.md."""

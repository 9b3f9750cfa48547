"""``python -m policy_topics.cli``: the same as the ``policy-topics`` command."""

from policy_topics.cli import main

main()

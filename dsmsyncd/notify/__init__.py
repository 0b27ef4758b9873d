"""Notifications: webhooks and mail about what the daemon did, off the publishing path.

A layer above ``pipeline`` and below ``daemon``: it reads finished jobs and their
history from ``state`` and counts in ``observe``; only the daemon imports it.
``notifier`` takes jobs and runs the loops, ``events`` says what a run means, ``message``
words it, ``target`` queues, limits (``limit``) and delivers it through ``channels``,
``progress`` counts it.
"""

from dsmsyncd.notify.notifier import Notifier

__all__ = ["Notifier"]

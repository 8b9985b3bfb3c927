/* The runs this process supervises right now, by pidfd: what a cancel (Ctrl-C in a batch)
 * kills, from any thread. A run is added once it has started and removed once it has been
 * reaped, before its pidfd is closed, so a pidfd in the table always names that run. */
#ifndef SB_RUNNING_H
#define SB_RUNNING_H

/* 0, or -1 with errno ENOMEM. */
int sb_running_add(int pidfd);

/* Forget the run; 1 when it was cancelled meanwhile, 0 when not, -1 when it was not there. */
int sb_running_remove(int pidfd);

/* SIGKILL every run in the table (through its pidfd) and mark it cancelled; how many were
 * signalled (a run already dead but not yet removed is marked all the same). */
int sb_running_cancel_all(void);

int sb_running_count(void);

/* In a forked child: the table is the parent's, forget it (no lock is taken). */
void sb_running_forget(void);

#endif

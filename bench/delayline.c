/*
 * delayline: a bounded Ethernet delay line between two network namespaces.
 *
 * The kernel here has no netem, so LAN latency is emulated in user space:
 * this program creates tap device TAP_A inside namespace NS_A and TAP_B
 * inside NS_B, and copies every frame from one to the other after holding it
 * for DELAY_US microseconds (one way; the round trip is twice that). Frames
 * keep their order; a frame that finds its queue full is dropped and counted.
 * The taps are not persistent: they disappear when the program exits.
 *
 *   delayline NS_A TAP_A NS_B TAP_B DELAY_US SECONDS
 *
 * Prints "ready" on stdout once both taps exist (configure addresses then),
 * runs at most SECONDS, stops early on SIGTERM/SIGINT, and prints one line of
 * counters on exit. Part of PortaPXE's benchmark suite (bench/), not of the
 * product.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8192          /* frames held per direction */
#define FRAME_MAX 9216      /* enough for a 9000-byte MTU */

struct slot {
    uint64_t due_ns;
    uint32_t len;
    unsigned char data[FRAME_MAX];
};

struct queue {
    struct slot *slots;
    uint32_t head, tail; /* head: next to send; tail: next free */
    uint64_t in, out, dropped;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

/* Create a tap named NAME inside namespace NS (by its /var/run/netns name). */
static int open_tap_in(const char *ns, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/var/run/netns/%s", ns);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        die(path);
    if (setns(nsfd, CLONE_NEWNET) < 0)
        die("setns");
    close(nsfd);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        die("/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF");
    return fd;
}

/* Read every frame waiting on FD into Q, due DELAY_NS from now. */
static void take(int fd, struct queue *q, uint64_t delay_ns) {
    for (;;) {
        uint32_t next = (q->tail + 1) % SLOTS;
        if (next == q->head) {
            /* Queue full: read into a scratch slot and drop. */
            static unsigned char scratch[FRAME_MAX];
            ssize_t n = read(fd, scratch, sizeof scratch);
            if (n <= 0)
                return;
            q->dropped++;
            continue;
        }
        struct slot *s = &q->slots[q->tail];
        ssize_t n = read(fd, s->data, FRAME_MAX);
        if (n <= 0)
            return;
        s->len = (uint32_t)n;
        s->due_ns = now_ns() + delay_ns;
        q->tail = next;
        q->in++;
    }
}

/* Write every frame of Q that is due to FD. */
static void give(int fd, struct queue *q, uint64_t now) {
    while (q->head != q->tail && q->slots[q->head].due_ns <= now) {
        struct slot *s = &q->slots[q->head];
        ssize_t n = write(fd, s->data, s->len);
        if (n < 0 && errno == EAGAIN)
            return; /* try again on the next round */
        q->head = (q->head + 1) % SLOTS;
        q->out++;
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s NS_A TAP_A NS_B TAP_B DELAY_US SECONDS\n", argv[0]);
        return 2;
    }
    uint64_t delay_ns = strtoull(argv[5], NULL, 10) * 1000ull;
    uint64_t limit_ns = strtoull(argv[6], NULL, 10) * 1000000000ull;
    if (limit_ns == 0 || limit_ns > 3600ull * 1000000000ull) {
        fprintf(stderr, "SECONDS must be 1..3600\n");
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on time, not 50 us late */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int fd[2] = {open_tap_in(argv[1], argv[2]), open_tap_in(argv[3], argv[4])};
    struct queue q[2]; /* q[0]: A -> B, q[1]: B -> A */
    for (int i = 0; i < 2; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].slots = calloc(SLOTS, sizeof(struct slot));
        if (!q[i].slots)
            die("calloc");
    }
    printf("ready\n");
    fflush(stdout);

    uint64_t end = now_ns() + limit_ns;
    struct pollfd pfd[2] = {{.fd = fd[0], .events = POLLIN}, {.fd = fd[1], .events = POLLIN}};
    while (!stop) {
        uint64_t now = now_ns();
        if (now >= end)
            break;
        give(fd[1], &q[0], now);
        give(fd[0], &q[1], now);
        /* Sleep until a frame arrives or the earliest held frame is due. */
        uint64_t wake = end;
        for (int i = 0; i < 2; i++)
            if (q[i].head != q[i].tail && q[i].slots[q[i].head].due_ns < wake)
                wake = q[i].slots[q[i].head].due_ns;
        uint64_t wait = wake > now ? wake - now : 0;
        if (wait > 100000000ull)
            wait = 100000000ull;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull), .tv_nsec = (long)(wait % 1000000000ull)};
        int r = ppoll(pfd, 2, &ts, NULL);
        if (r < 0 && errno != EINTR)
            die("ppoll");
        if (r > 0) {
            if (pfd[0].revents & POLLIN)
                take(fd[0], &q[0], delay_ns);
            if (pfd[1].revents & POLLIN)
                take(fd[1], &q[1], delay_ns);
        }
    }
    fprintf(stderr, "delayline: a->b in %llu out %llu dropped %llu; b->a in %llu out %llu dropped %llu\n",
            (unsigned long long)q[0].in, (unsigned long long)q[0].out, (unsigned long long)q[0].dropped,
            (unsigned long long)q[1].in, (unsigned long long)q[1].out, (unsigned long long)q[1].dropped);
    return 0;
}

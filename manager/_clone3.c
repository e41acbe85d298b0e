/*
 * Starting a program inside a cgroup with clone3(CLONE_INTO_CGROUP).
 *
 * Writing a pid to cgroup.procs takes the kernel's cgroup_threadgroup_rwsem
 * for writing, and after an idle spell that first waits for an RCU grace
 * period: 5 to 12 ms on the machines measured, against a spawn of well under
 * one. A child created with CLONE_INTO_CGROUP is born in its cgroup, so no
 * migration happens at all and the program never runs anywhere else.
 *
 * The child shares the manager's memory (CLONE_VM), as with posix_spawn,
 * but the manager does not wait for its exec (no CLONE_VFORK): in a boot of
 * 500 units that wait was about a sixth of the time (bench/notes.md, S1:
 * 463 ms of spawns against 348 without it). So the child runs beside
 * the manager's threads and must touch nothing they use:
 *
 * - it makes raw system calls only, never a libc function, which could
 *   write errno into the thread-local storage of the manager's thread;
 * - it runs on a stack of its own, in a block that also contains its
 *   arguments. The kernel clears the block's `tid` word when the child
 *   execs or exits (CLONE_CHILD_CLEARTID), and only then does a later call
 *   free the block;
 * - every signal is blocked from the clone until the child has reset the
 *   manager's handlers, so no handler of the manager runs in the child.
 *
 * A failed step (setsid, a descriptor action, the exec) cannot raise in
 * spawn() any more. The child writes "203 STEP ERRNO SUBJECT: TEXT" to the
 * status descriptor, as exechelper.py does, and exits with 203 (systemd's
 * EXIT_EXEC).
 *
 * clone3 with a separate stack cannot be called through libc's syscall():
 * the child would return into a frame on the parent's stack. So the call is
 * written in assembly, for x86-64 only; elsewhere spawn() raises
 * CloneUnavailable (ENOSYS) and spawn.py uses its other paths.
 */

#define PY_SSIZE_T_CLEAN
/* The stable ABI of Python 3.11: one build serves every later Python. */
#define Py_LIMITED_API 0x030B0000
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The numbers of os.POSIX_SPAWN_CLOSE and os.POSIX_SPAWN_DUP2. */
enum { ACTION_CLOSE = 1, ACTION_DUP2 = 2 };

/* systemd's exit status for a process that could not be started. */
#define EXIT_EXEC 203

/* Enough for the signal loop and the status message. */
#define CHILD_STACK_SIZE (32 * 1024)
#define MESSAGE_SIZE 4608
#define ERROR_TEXTS 160

struct clone3_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/* The kernel's struct sigaction on x86-64, for rt_sigaction. */
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* The stack and arguments of one child, kept until the kernel clears `tid` at its exec or exit. */
struct block {
    struct block *next;
    volatile int32_t tid;
    const char *path;
    char **argv;
    char **envp;
    int *actions; /* triples: ACTION_*, fd, target */
    Py_ssize_t action_count;
    uint64_t sigdef;  /* bit N-1 set: reset signal N to its default */
    int status_fd;
    int status_floor;  /* the status descriptor is moved to this number or above */
    PyObject *keep;    /* the bytes objects behind path, argv and envp */
    char stack[CHILD_STACK_SIZE] __attribute__((aligned(16)));
};

/* Blocks whose child may still be before its exec. Changed with the GIL held. */
static struct block *pending;
/* strerror() of each errno and its length, made at import: the child must not call strerror() or strlen(). */
static const char *error_texts[ERROR_TEXTS];
static size_t error_lengths[ERROR_TEXTS];

static PyObject *CloneUnavailable;
static PyObject *CloneFailed;

#if defined(__x86_64__)
static inline long
raw_syscall(long number, long a, long b, long c, long d)
{
    long result;
    register long r10 __asm__("r10") = d;
    __asm__ __volatile__("syscall"
                         : "=a"(result)
                         : "0"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                         : "rcx", "r11", "memory");
    return result;
}
#else
static inline long
raw_syscall(long number, long a, long b, long c, long d)
{
    (void)number, (void)a, (void)b, (void)c, (void)d;
    return -ENOSYS;
}
#endif

/* Append `text` to `buffer`, stopping before index `end`. */
static size_t
append_text_until(char *buffer, size_t used, const char *text, size_t end)
{
    while (*text && used < end)
        buffer[used++] = *text++;
    return used;
}

static size_t
append_text(char *buffer, size_t used, const char *text)
{
    return append_text_until(buffer, used, text, MESSAGE_SIZE - 1);
}

static size_t
append_number(char *buffer, size_t used, long number)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + number % 10);
        number /= 10;
    } while (number > 0 && count < (int)sizeof(digits));
    while (count > 0 && used < MESSAGE_SIZE - 1)
        buffer[used++] = digits[--count];
    return used;
}

/* Report a failed step on the status descriptor and exit; raw system calls only. */
static void __attribute__((noreturn))
child_failed(struct block *block, int status_fd, const char *step, long error)
{
    char message[MESSAGE_SIZE];
    size_t used = append_number(message, 0, EXIT_EXEC);
    used = append_text(message, used, " ");
    used = append_text(message, used, step);
    used = append_text(message, used, " ");
    used = append_number(message, used, error);
    used = append_text(message, used, " ");
    const char *text = "unknown error";
    size_t text_length = sizeof("unknown error") - 1;
    if (error > 0 && error < ERROR_TEXTS && error_texts[error] != NULL) {
        text = error_texts[error];
        text_length = error_lengths[error];
    }
    /* A path longer than the message is cut, marked with "...", so the error text always fits. */
    size_t path_end = MESSAGE_SIZE - 1 - text_length - sizeof(": ...") + 1;
    size_t path_start = used;
    used = append_text_until(message, used, block->path, path_end);
    if (block->path[used - path_start] != '\0')
        used = append_text(message, used, "...");
    used = append_text(message, used, ": ");
    used = append_text(message, used, text);
    if (status_fd >= 0) {
        size_t written = 0;
        while (written < used) {
            long count = raw_syscall(SYS_write, status_fd, (long)(message + written), (long)(used - written), 0);
            if (count <= 0)
                break;
            written += (size_t)count;
        }
    }
    for (;;)
        raw_syscall(SYS_exit_group, EXIT_EXEC, 0, 0, 0);
}

/* Return whether an action of `block` names descriptor `fd`, as its source, its target or the one it closes. */
static int
action_names(const struct block *block, long fd)
{
    for (Py_ssize_t i = 0; i < block->action_count; i++) {
        if (block->actions[3 * i + 1] == fd || block->actions[3 * i + 2] == fd)
            return 1;
    }
    return 0;
}

/* Return a close-on-exec copy of the status descriptor that no action touches, or a negative errno. */
static long
copy_status_fd(const struct block *block)
{
    long result = raw_syscall(SYS_fcntl, block->status_fd, F_DUPFD_CLOEXEC, block->status_floor, 0);
    /* EINVAL: the floor is at or above RLIMIT_NOFILE's soft limit. Take the lowest
     * free number that no action names instead. It survives every action too. */
    long start = 3;
    while (result == -EINVAL && start < block->status_floor) {
        long candidate = raw_syscall(SYS_fcntl, block->status_fd, F_DUPFD_CLOEXEC, start, 0);
        if (candidate < 0 || !action_names(block, candidate))
            return candidate;
        raw_syscall(SYS_close, candidate, 0, 0, 0);
        start = candidate + 1;
    }
    return result;
}

static int
run_child(void *data)
{
    struct block *block = data;
    struct kernel_sigaction action, reset;
    uint64_t empty = 0;
    long result;

    /* A signal handler of the manager must never run in the child, which
     * shares its memory: reset every caught signal, and those asked for.
     * Field by field, because a memset() could be a call into libc. */
    reset.handler = SIG_DFL;
    reset.flags = 0;
    reset.restorer = NULL;
    reset.mask = 0;
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (raw_syscall(SYS_rt_sigaction, sig, 0, (long)&action, sizeof(uint64_t)) != 0)
            continue;
        if (action.handler == SIG_DFL)
            continue;
        if (action.handler == SIG_IGN && !(block->sigdef >> (sig - 1) & 1))
            continue;
        raw_syscall(SYS_rt_sigaction, sig, (long)&reset, 0, sizeof(uint64_t));
    }
    /* A copy that no action overwrites or closes, closed at exec. */
    int status_fd = -1;
    if (block->status_fd >= 0) {
        result = copy_status_fd(block);
        /* No action has run yet, so the caller's descriptor still leads to the status pipe: report
         * there rather than run a program whose failures would go unreported. A closed status
         * descriptor (EBADF) has no reader to tell, and the program runs without one. */
        if (result < 0 && result != -EBADF)
            child_failed(block, block->status_fd, "fcntl", -result);
        status_fd = result >= 0 ? (int)result : -1;
    }
    result = raw_syscall(SYS_setsid, 0, 0, 0, 0);
    if (result < 0)
        child_failed(block, status_fd, "setsid", -result);
    for (Py_ssize_t i = 0; i < block->action_count; i++) {
        int op = block->actions[3 * i];
        int fd = block->actions[3 * i + 1];
        int target = block->actions[3 * i + 2];
        if (op == ACTION_CLOSE) {
            result = raw_syscall(SYS_close, fd, 0, 0, 0);
            if (result < 0 && result != -EBADF)
                child_failed(block, status_fd, "close", -result);
        } else if (fd == target) {
            /* dup2 onto itself keeps FD_CLOEXEC; the descriptor must survive exec. */
            result = raw_syscall(SYS_fcntl, fd, F_GETFD, 0, 0);
            if (result >= 0)
                result = raw_syscall(SYS_fcntl, fd, F_SETFD, result & ~FD_CLOEXEC, 0);
            if (result < 0)
                child_failed(block, status_fd, "dup2", -result);
        } else {
            result = raw_syscall(SYS_dup2, fd, target, 0, 0);
            if (result < 0)
                child_failed(block, status_fd, "dup2", -result);
        }
    }
    result = raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, sizeof(uint64_t));
    if (result < 0)
        child_failed(block, status_fd, "sigprocmask", -result);
    result = raw_syscall(SYS_execve, (long)block->path, (long)block->argv, (long)block->envp, 0);
    child_failed(block, status_fd, "execve", -result);
}

#if defined(__x86_64__)
/* Return the child's pid, or a negative errno. The child runs `fn(arg)` on
 * the stack in `args` and exits with its return value. */
static long
clone3_run(struct clone3_args *args, int (*fn)(void *), void *arg)
{
    long result;
    __asm__ __volatile__(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        /* The child: a new stack, no caller frame. The argument is moved
         * before %rbp is cleared, and neither input may sit in %rbp. */
        "movq %[arg], %%rdi\n\t"
        "xorl %%ebp, %%ebp\n\t"
        "callq *%[fn]\n\t"
        "movl %%eax, %%edi\n\t"
        "movl %[exit_nr], %%eax\n\t"
        "syscall\n\t"
        "hlt\n"
        "1:\n\t"
        : "=a"(result)
        : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)),
          [fn] "d"(fn), [arg] "b"(arg), [exit_nr] "i"(SYS_exit)
        : "rcx", "r11", "memory");
    return result;
}
#else
static long
clone3_run(struct clone3_args *args, int (*fn)(void *), void *arg)
{
    (void)args, (void)fn, (void)arg;
    return -ENOSYS;
}
#endif

/* Return a NULL-terminated array of the byte strings in a sequence of str
 * or bytes; `keep` receives the list of bytes objects that own them. A str
 * or bytes object itself is rejected, not taken as a sequence of characters. */
static char **
to_vector(PyObject *sequence, const char *what, PyObject **keep)
{
    Py_ssize_t count = -1;
    if (!PyUnicode_Check(sequence) && !PyBytes_Check(sequence))
        count = PySequence_Size(sequence);
    if (count < 0) {
        PyErr_SetString(PyExc_TypeError, what);
        return NULL;
    }
    /* __len__ of a custom sequence may return up to PY_SSIZE_T_MAX. */
    if (count >= PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(char *)) {
        PyErr_NoMemory();
        return NULL;
    }
    char **vector = PyMem_Calloc(count + 1, sizeof(char *));
    PyObject *owned = PyList_New(0);
    if (vector == NULL || owned == NULL) {
        PyMem_Free(vector);
        Py_XDECREF(owned);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_GetItem(sequence, i);
        PyObject *encoded = NULL;
        int converted = item != NULL && PyUnicode_FSConverter(item, &encoded);
        Py_XDECREF(item);
        if (!converted)
            goto error;
        int appended = PyList_Append(owned, encoded);
        vector[i] = PyBytes_AsString(encoded);
        Py_DECREF(encoded);  /* `owned` keeps it alive */
        if (appended != 0 || vector[i] == NULL)
            goto error;
    }
    *keep = owned;
    return vector;
error:
    PyMem_Free(vector);
    Py_DECREF(owned);
    return NULL;
}

static int *
to_actions(PyObject *sequence, Py_ssize_t *count)
{
    *count = PySequence_Size(sequence);
    if (*count < 0) {
        PyErr_SetString(PyExc_TypeError, "actions must be a sequence");
        return NULL;
    }
    /* Keep `*count * 3 + 1` from overflowing into a short buffer. */
    if (*count >= PY_SSIZE_T_MAX / 3 / (Py_ssize_t)sizeof(int)) {
        PyErr_NoMemory();
        return NULL;
    }
    int *actions = PyMem_Calloc(*count * 3 + 1, sizeof(int));
    if (actions == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *count; i++) {
        int op, fd, target = -1;
        PyObject *item = PySequence_GetItem(sequence, i);
        if (item != NULL && !PyTuple_Check(item)) {
            PyErr_Format(PyExc_TypeError, "an action is a tuple (op, fd[, target]), not %R", item);
            Py_DECREF(item);
            goto error;
        }
        int parsed = item != NULL && PyArg_ParseTuple(item, "ii|i;an action is (op, fd[, target])",
                                                      &op, &fd, &target);
        Py_XDECREF(item);
        if (!parsed)
            goto error;
        if (op != ACTION_DUP2 && op != ACTION_CLOSE) {
            PyErr_Format(PyExc_ValueError, "invalid action %d: expected DUP2 (%d) or CLOSE (%d)", op,
                         ACTION_DUP2, ACTION_CLOSE);
            goto error;
        }
        if (op == ACTION_DUP2 && target < 0) {
            PyErr_SetString(PyExc_ValueError, "invalid DUP2 action: the target descriptor is missing");
            goto error;
        }
        actions[3 * i] = op;
        actions[3 * i + 1] = fd;
        actions[3 * i + 2] = target;
    }
    return actions;
error:
    PyMem_Free(actions);
    return NULL;
}

/* Return the signals in `iterable` as a mask, bit N-1 for signal N. */
static int
to_sigdef(PyObject *iterable, uint64_t *mask)
{
    *mask = 0;
    PyObject *iterator = PyObject_GetIter(iterable);
    if (iterator == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        long sig = PyLong_AsLong(item);
        Py_DECREF(item);
        if (sig == -1 && PyErr_Occurred())
            break;
        if (sig < 1 || sig >= NSIG || sig > 64) {
            PyErr_Format(PyExc_ValueError, "invalid signal number %ld: expected 1 to %d", sig, NSIG - 1);
            break;
        }
        *mask |= (uint64_t)1 << (sig - 1);
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

/* Blocks of finished children, kept for the next spawns. Their stack pages are mapped
 * already, so reuse saves an mmap, a munmap and the next child's first page faults. The
 * munmap would also flush the TLB of the other CPUs, where children may still run in this
 * memory. At most MAX_SPARE_BLOCKS are kept, and collect() unmaps them all. Changed with
 * the GIL held. */
#define MAX_SPARE_BLOCKS 4
static struct block *spare;
static int spare_count;

/* Return a block with every pointer field NULL, or NULL when no memory could be mapped. */
static struct block *
take_block(void)
{
    struct block *block = spare;
    if (block != NULL) {
        spare = block->next;
        spare_count--;
        block->next = NULL;
        return block;
    }
    /* Mapped rather than allocated: the child touches only the top pages of its stack, and
     * munmap() gives them back at once, so children in flight leave the idle manager no RSS. */
    block = mmap(NULL, sizeof(struct block), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return block == MAP_FAILED ? NULL : block;
}

static void
free_block(struct block *block)
{
    PyMem_Free(block->argv);
    PyMem_Free(block->envp);
    PyMem_Free(block->actions);
    Py_XDECREF(block->keep);
    block->argv = block->envp = NULL;
    block->actions = NULL;
    block->keep = NULL;
    if (spare_count < MAX_SPARE_BLOCKS) {
        block->next = spare;
        spare = block;
        spare_count++;
        return;
    }
    munmap(block, sizeof(struct block));
}

static void
unmap_spare_blocks(void)
{
    while (spare != NULL) {
        struct block *block = spare;
        spare = block->next;
        munmap(block, sizeof(struct block));
    }
    spare_count = 0;
}

/* Free the blocks of children that have exec'd or exited. */
static void
free_finished_blocks(void)
{
    struct block **link = &pending;
    while (*link != NULL) {
        struct block *block = *link;
        if (__atomic_load_n(&block->tid, __ATOMIC_ACQUIRE) == 0) {
            *link = block->next;
            free_block(block);
        } else {
            link = &block->next;
        }
    }
}

PyDoc_STRVAR(spawn_doc,
"spawn(path, argv, env, actions, sigdef, cgroup_fd, status_fd=-1) -> pid\n\n"
"Start `path` in a new session inside the cgroup open at `cgroup_fd`.\n"
"`env` is a sequence of 'NAME=value' strings; `actions` a sequence of\n"
"(DUP2, fd, target) and (CLOSE, fd) run in order; `sigdef` the signals\n"
"reset to their default disposition. The signal mask starts empty.\n"
"Returns without waiting for the exec. When a setup step or the exec fails,\n"
"the child writes '203 STEP ERRNO PATH: TEXT' to `status_fd` (when it is not\n"
"-1) and exits with status 203; the descriptor is closed in the child at a\n"
"successful exec, so EOF on a close-on-exec pipe means the program runs.\n"
"Raises CloneUnavailable when this kernel or architecture has no usable\n"
"clone3 with CLONE_INTO_CGROUP, and CloneFailed when the kernel refuses this\n"
"cgroup (with the kernel's errno).");

static PyObject *
spawn(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *path_arg, *argv_arg, *env_arg, *actions_arg, *sigdef_arg;
    int cgroup_fd, status_fd = -1;
    if (!PyArg_ParseTuple(args, "OOOOOi|i:spawn", &path_arg, &argv_arg, &env_arg, &actions_arg,
                          &sigdef_arg, &cgroup_fd, &status_fd))
        return NULL;
    /* clone3 rejects a negative descriptor with EINVAL, which means "no
     * CLONE_INTO_CGROUP" to spawn.py and would turn clone3 off for good. */
    if (cgroup_fd < 0) {
        PyErr_Format(PyExc_ValueError, "invalid cgroup descriptor %d: expected an open cgroup directory", cgroup_fd);
        return NULL;
    }
    if (status_fd < -1) {
        PyErr_Format(PyExc_ValueError, "invalid status descriptor %d: expected -1 or an open descriptor", status_fd);
        return NULL;
    }
    free_finished_blocks();

    PyObject *path = NULL, *argv_keep = NULL, *env_keep = NULL;
    struct block *block = take_block();
    if (block == NULL)
        return PyErr_NoMemory();
    if (!PyUnicode_FSConverter(path_arg, &path))
        goto error;
    block->argv = to_vector(argv_arg, "argv must be a sequence of str or bytes", &argv_keep);
    if (block->argv == NULL)
        goto error;
    if (block->argv[0] == NULL) {
        PyErr_SetString(PyExc_ValueError, "argv must not be empty: pass the program name as argv[0]");
        goto error;
    }
    block->envp = to_vector(env_arg, "env must be a sequence of 'NAME=value' strings", &env_keep);
    if (block->envp == NULL)
        goto error;
    block->actions = to_actions(actions_arg, &block->action_count);
    if (block->actions == NULL)
        goto error;
    if (to_sigdef(sigdef_arg, &block->sigdef) != 0)
        goto error;
    block->keep = PyTuple_Pack(3, path, argv_keep, env_keep);
    if (block->keep == NULL)
        goto error;
    Py_CLEAR(path);
    Py_CLEAR(argv_keep);
    Py_CLEAR(env_keep);
    block->path = PyBytes_AsString(PyTuple_GetItem(block->keep, 0));
    block->status_fd = status_fd;
    block->status_floor = 3;
    for (Py_ssize_t i = 0; i < block->action_count; i++) {
        for (int part = 1; part <= 2; part++) {
            int fd = block->actions[3 * i + part];
            if (fd >= block->status_floor && fd < INT32_MAX)
                block->status_floor = fd + 1;
        }
    }
    block->tid = 1;

    struct clone3_args clone_args;
    memset(&clone_args, 0, sizeof(clone_args));
    clone_args.flags = CLONE_VM | CLONE_CHILD_CLEARTID | CLONE_INTO_CGROUP;
    clone_args.child_tid = (uint64_t)(uintptr_t)&block->tid;
    clone_args.exit_signal = SIGCHLD;
    clone_args.stack = (uint64_t)(uintptr_t)block->stack;
    clone_args.stack_size = CHILD_STACK_SIZE;
    clone_args.cgroup = (uint64_t)cgroup_fd;

    /* Every signal stays blocked in the child until it has reset the handlers. The raw call
     * blocks glibc's internal SIGCANCEL (32) and SIGSETXID (33) too: pthread_sigmask() leaves
     * them open, and glibc's handlers would run in the child on the manager's thread pointer. */
    uint64_t all = ~(uint64_t)0, previous = 0;
    raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)&previous, sizeof(uint64_t));
    long pid = clone3_run(&clone_args, run_child, block);
    raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&previous, 0, sizeof(uint64_t));

    if (pid < 0) {
        int error = (int)-pid;
        if (error == ENOSYS || error == EPERM || error == EINVAL || error == E2BIG)
            PyErr_Format(CloneUnavailable, "clone3 with CLONE_INTO_CGROUP failed: %s", strerror(error));
        else {
            errno = error;
            PyErr_SetFromErrno(CloneFailed);
        }
        free_block(block);
        return NULL;
    }
    block->next = pending;
    pending = block;
    return PyLong_FromLong(pid);
error:
    Py_XDECREF(path);
    Py_XDECREF(argv_keep);
    Py_XDECREF(env_keep);
    free_block(block);
    return NULL;
}

PyDoc_STRVAR(collect_doc,
"collect() -> int\n\n"
"Free what spawn() kept for children that have exec'd or exited since the\n"
"last call (spawn() does this too, keeping a few blocks for the next spawns),\n"
"unmap the kept blocks; return how many children are still before their exec.");

static PyObject *
collect(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    free_finished_blocks();
    unmap_spare_blocks();
    long count = 0;
    for (struct block *block = pending; block != NULL; block = block->next)
        count++;
    return PyLong_FromLong(count);
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, spawn_doc},
    {"collect", collect, METH_NOARGS, collect_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_clone3",
    .m_doc = "clone3(CLONE_INTO_CGROUP) spawning for manager/spawn.py.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__clone3(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    for (int error = 1; error < ERROR_TEXTS; error++) {
        error_texts[error] = strdup(strerror(error));
        error_lengths[error] = error_texts[error] != NULL ? strlen(error_texts[error]) : 0;
    }
    CloneFailed = PyErr_NewException("unitmgr.manager._clone3.CloneFailed", PyExc_OSError, NULL);
    CloneUnavailable = PyErr_NewException("unitmgr.manager._clone3.CloneUnavailable", CloneFailed, NULL);
    if (CloneFailed == NULL || CloneUnavailable == NULL
        || PyModule_AddObjectRef(module, "CloneFailed", CloneFailed) != 0
        || PyModule_AddObjectRef(module, "CloneUnavailable", CloneUnavailable) != 0
        || PyModule_AddIntConstant(module, "DUP2", ACTION_DUP2) != 0
        || PyModule_AddIntConstant(module, "CLOSE", ACTION_CLOSE) != 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

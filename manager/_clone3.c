/*
 * Starting a program inside a cgroup with clone3(CLONE_INTO_CGROUP).
 *
 * Writing a pid to cgroup.procs takes the kernel's cgroup_threadgroup_rwsem
 * for writing, and after an idle spell that first waits for an RCU grace
 * period: 5 to 12 ms on the machines measured, against a spawn of well under
 * one. A child created with CLONE_INTO_CGROUP is born in its cgroup, so no
 * migration happens at all and the program never runs anywhere else.
 *
 * The child is created the way glibc's posix_spawn creates it: CLONE_VM and
 * CLONE_VFORK, on a stack of its own, with every signal blocked in the parent
 * until it returns. The child shares the manager's memory, so between the
 * clone and the exec it only makes system calls through async-signal-safe
 * libc functions and writes its errno to `struct child.error`. The parent
 * resumes once the child has exec'd or exited, so an exec failure is known
 * when spawn() returns, as with posix_spawn.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The numbers of os.POSIX_SPAWN_CLOSE and os.POSIX_SPAWN_DUP2. */
enum { ACTION_CLOSE = 1, ACTION_DUP2 = 2 };

/* Enough for the signal loop and the libc wrappers the child calls. */
#define CHILD_STACK_SIZE (64 * 1024)

static char child_stack[CHILD_STACK_SIZE] __attribute__((aligned(64)));

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

struct child {
    const char *path;
    char *const *argv;
    char *const *envp;
    const int *actions; /* triples: ACTION_*, fd, target */
    Py_ssize_t action_count;
    sigset_t sigdef;
    volatile int error;
};

static PyObject *CloneUnavailable;
static PyObject *CloneFailed;

static int
run_child(void *data)
{
    struct child *child = data;
    struct sigaction action;
    sigset_t empty;

    /* A signal handler of the manager must never run in the child, which
     * shares its memory: reset every caught signal, and those asked for. */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &action) != 0)
            continue;  /* glibc's internal signals */
        if (action.sa_handler == SIG_DFL)
            continue;
        if (action.sa_handler == SIG_IGN && !sigismember(&child->sigdef, sig))
            continue;
        memset(&action, 0, sizeof(action));
        action.sa_handler = SIG_DFL;
        sigaction(sig, &action, NULL);
    }
    if (setsid() < 0)
        goto failed;
    for (Py_ssize_t i = 0; i < child->action_count; i++) {
        int op = child->actions[3 * i];
        int fd = child->actions[3 * i + 1];
        int target = child->actions[3 * i + 2];
        if (op == ACTION_CLOSE) {
            if (close(fd) != 0 && errno != EBADF)
                goto failed;
        } else if (fd == target) {
            /* dup2 onto itself keeps FD_CLOEXEC; the descriptor must survive exec. */
            int flags = fcntl(fd, F_GETFD);
            if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                goto failed;
        } else if (dup2(fd, target) < 0) {
            goto failed;
        }
    }
    sigemptyset(&empty);
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0)
        goto failed;
    execve(child->path, child->argv, child->envp);
failed:
    child->error = errno ? errno : EINVAL;
    _exit(127);
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

static int
to_sigset(PyObject *iterable, sigset_t *set)
{
    sigemptyset(set);
    PyObject *iterator = PyObject_GetIter(iterable);
    if (iterator == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        long sig = PyLong_AsLong(item);
        Py_DECREF(item);
        if (sig == -1 && PyErr_Occurred())
            break;
        if (sig < 1 || sig >= NSIG) {
            PyErr_Format(PyExc_ValueError, "invalid signal number %ld: expected 1 to %d", sig, NSIG - 1);
            break;
        }
        sigaddset(set, (int)sig);
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

PyDoc_STRVAR(spawn_doc,
"spawn(path, argv, env, actions, sigdef, cgroup_fd) -> pid\n\n"
"Start `path` in a new session inside the cgroup open at `cgroup_fd`.\n"
"`env` is a sequence of 'NAME=value' strings; `actions` a sequence of\n"
"(DUP2, fd, target) and (CLOSE, fd) run in order; `sigdef` the signals\n"
"reset to their default disposition. The signal mask starts empty.\n"
"Raises CloneUnavailable when this kernel or architecture has no usable\n"
"clone3 with CLONE_INTO_CGROUP, CloneFailed when the kernel refuses this\n"
"cgroup (with the kernel's errno), and OSError with the child's errno when a\n"
"setup step or the exec failed.");

static PyObject *
spawn(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *path_arg, *argv_arg, *env_arg, *actions_arg, *sigdef_arg;
    int cgroup_fd;
    if (!PyArg_ParseTuple(args, "OOOOOi:spawn", &path_arg, &argv_arg, &env_arg, &actions_arg,
                          &sigdef_arg, &cgroup_fd))
        return NULL;
    /* clone3 rejects a negative descriptor with EINVAL, which means "no
     * CLONE_INTO_CGROUP" to spawn.py and would turn clone3 off for good. */
    if (cgroup_fd < 0) {
        PyErr_Format(PyExc_ValueError, "invalid cgroup descriptor %d: expected an open cgroup directory", cgroup_fd);
        return NULL;
    }

    PyObject *path = NULL, *argv_keep = NULL, *env_keep = NULL, *result = NULL;
    char **argv = NULL, **envp = NULL;
    int *actions = NULL;
    struct child child;
    memset(&child, 0, sizeof(child));

    if (!PyUnicode_FSConverter(path_arg, &path))
        return NULL;
    argv = to_vector(argv_arg, "argv must be a sequence of str or bytes", &argv_keep);
    if (argv == NULL)
        goto done;
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_ValueError, "argv must not be empty: pass the program name as argv[0]");
        goto done;
    }
    envp = to_vector(env_arg, "env must be a sequence of 'NAME=value' strings", &env_keep);
    if (envp == NULL)
        goto done;
    actions = to_actions(actions_arg, &child.action_count);
    if (actions == NULL)
        goto done;
    if (to_sigset(sigdef_arg, &child.sigdef) != 0)
        goto done;
    child.path = PyBytes_AsString(path);
    child.argv = argv;
    child.envp = envp;
    child.actions = actions;

    struct clone3_args clone_args;
    memset(&clone_args, 0, sizeof(clone_args));
    clone_args.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
    clone_args.exit_signal = SIGCHLD;
    clone_args.stack = (uint64_t)(uintptr_t)child_stack;
    clone_args.stack_size = CHILD_STACK_SIZE;
    clone_args.cgroup = (uint64_t)cgroup_fd;

    /* The GIL stays held: the one child stack is shared by every call. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    long pid = clone3_run(&clone_args, run_child, &child);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);

    if (pid < 0) {
        int error = (int)-pid;
        if (error == ENOSYS || error == EPERM || error == EINVAL || error == E2BIG)
            PyErr_Format(CloneUnavailable, "clone3 with CLONE_INTO_CGROUP failed: %s", strerror(error));
        else {
            errno = error;
            PyErr_SetFromErrno(CloneFailed);
        }
        goto done;
    }
    if (child.error) {
        int status;
        while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR)
            ;
        errno = child.error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_arg);
        goto done;
    }
    result = PyLong_FromLong(pid);
done:
    PyMem_Free(argv);
    PyMem_Free(envp);
    PyMem_Free(actions);
    Py_XDECREF(argv_keep);
    Py_XDECREF(env_keep);
    Py_XDECREF(path);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, spawn_doc},
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

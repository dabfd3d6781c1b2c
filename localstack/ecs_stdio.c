/* ecs-stdio CMD [ARGS...]: run CMD with its stderr on the same pipe as its stdout.
 *
 * Docker reads a container's stdout and stderr from two pipes in two goroutines and stamps each line
 * when it reads it, so across the two its log is not in the order the process wrote: a stderr line
 * can land after stdout lines written later, and be the last line (EcsRunTaskOperator's XCom).
 * awslogs events carry no stdout/stderr flag, so one pipe loses nothing ECS shows. The emulator
 * (ecs_fidelity.py) starts every task container's command through this, from a read-only volume;
 * static, so it runs in any image. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: ecs-stdio CMD [ARGS...]\n", stderr);
        return 2;
    }
    /* The real stderr stays open (a successful exec closes it) only to say why CMD could not run:
     * the emulator reports that as the container's start failure, as Docker refuses such a start. */
    FILE *report = fdopen(fcntl(2, F_DUPFD_CLOEXEC, 3), "w");
    dup2(1, 2);
    execvp(argv[1], argv + 1);  /* unlike Docker, runs an executable text file without #! under sh */
    int err = errno;
    if (err == EACCES && !strchr(argv[1], '/'))
        err = ENOENT;  /* runc's PATH lookup skips files it may not run: "not found", as Docker says */
    char why[128];     /* strerror in Go's lower case, as Docker words it: "permission denied" */
    snprintf(why, sizeof why, "%s", strerror(err));
    why[0] = (char)tolower((unsigned char)why[0]);
    FILE *out = report ? report : stderr;
    if (err == ENOENT && !strchr(argv[1], '/'))
        fprintf(out, "exec: \"%s\": executable file not found in $PATH\n", argv[1]);
    else if (err == ENOENT)
        fprintf(out, "exec: \"%s\": stat %s: %s\n", argv[1], argv[1], why);
    else
        fprintf(out, "exec: \"%s\": %s\n", argv[1], why);
    return err == ENOENT ? 127 : 126;
}

// Wall time of whole processes, paired: each round runs every command once, in turn, and
// the medians over the rounds are printed (ms), with each command's median ratio to the
// first command (the ratio is taken per round, then its median).
//   startup ROUNDS 'label=cmd arg ...' 'label=cmd ...' ...
// A command's words are split on spaces; leading NAME=VALUE words are set in its
// environment (no `env` process in between); its stdout goes to /dev/null, its stderr stays.
// Exits 1 when a command fails.
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

extern char** environ;

enum { k_max_words = 32, k_max_commands = 16 };

struct command {
  const char* label;
  char* argv[k_max_words + 1];
  char** env;
  double* ms;
  double* ratio;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, n, sizeof *v, by_value);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: startup ROUNDS 'label=cmd args' ...\n");
    return 2;
  }
  const int rounds = atoi(argv[1]);
  const int n = argc - 2;
  if (rounds < 1 || n > k_max_commands) return 2;
  struct command cmds[k_max_commands];
  for (int c = 0; c < n; c++) {
    char* spec = strdup(argv[c + 2]);
    char* eq = strchr(spec, '=');
    if (eq == NULL) return 2;
    *eq = '\0';
    cmds[c].label = spec;
    int w = 0, e = 0, given = 0;
    while (environ[given]) given++;
    cmds[c].env = calloc(given + k_max_words + 1, sizeof(char*));
    for (char* save = NULL, *word = strtok_r(eq + 1, " ", &save); word && w < k_max_words;
         word = strtok_r(NULL, " ", &save)) {
      if (w == 0 && strchr(word, '=') != NULL && word[0] != '/')
        cmds[c].env[e++] = word;  // before ours: the first of a name wins in getenv
      else
        cmds[c].argv[w++] = word;
    }
    cmds[c].argv[w] = NULL;
    for (int i = 0; i < given; i++) cmds[c].env[e++] = environ[i];
    cmds[c].env[e] = NULL;
    cmds[c].ms = calloc(rounds, sizeof(double));
    cmds[c].ratio = calloc(rounds, sizeof(double));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  for (int r = 0; r < rounds; r++) {
    for (int c = 0; c < n; c++) {
      pid_t pid;
      int status;
      const double start = now_ms();
      if (posix_spawnp(&pid, cmds[c].argv[0], &actions, NULL, cmds[c].argv, cmds[c].env) != 0 ||
          waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "startup: %s failed\n", cmds[c].label);
        return 1;
      }
      cmds[c].ms[r] = now_ms() - start;
    }
    for (int c = 0; c < n; c++) cmds[c].ratio[r] = cmds[c].ms[r] / cmds[0].ms[r];
  }
  for (int c = 0; c < n; c++)
    printf("%-32s %7.2f ms   %5.2f x %s\n", cmds[c].label, median(cmds[c].ms, rounds),
           median(cmds[c].ratio, rounds), cmds[0].label);
  return 0;
}

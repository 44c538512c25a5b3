/*
 * mkkv.c — the mkkv command: builds kvro images and inspects any source
 * kvro_open accepts. This file only dispatches; each command lives in its
 * own file and is one line in the table below.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

extern const command cmd_crunch; /* build_crunch.c */

static const command *const commands[] = {
    &cmd_ls,  &cmd_cat, &cmd_stat,  &cmd_verify, &cmd_tar,   &cmd_crunch,
    &cmd_fat, &cmd_put, &cmd_mkdir, &cmd_rm,     &cmd_cache, NULL,
};

static void help(FILE *f)
{
    fputs("Usage: mkkv COMMAND [OPTIONS] ARGS...\n"
          "Build and inspect read-only key/value sources: host directories and images.\n"
          "\nCommands:\n",
          f);
    for (size_t i = 0; commands[i]; i++)
        fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\nA SOURCE is any of:\n", f);
    for (size_t i = 0; i < kvro_backend_count(); i++)
        fprintf(f, "  %-8s %s\n", kvro_backend_name(i), kvro_backend_description(i));
    fputs("It is detected from its contents; -t NAME forces one. SOURCE '-' is an image\n"
          "on standard input; --image-offset N and --image-length N pick an image\n"
          "inside a bigger file (a partition, an archive appended to a program).\n"
          "\nKeys are '/'-separated paths inside the source; \"\" or / is the root.\n"
          "Names are shown escaped, as GNU ls -b does (\\\\, \\n, \\t, \\033 ...; 'mkkv ls\n"
          "--help' says how); 'mkkv ls -0' gives them unescaped, NUL-separated.\n"
          "Exit status: 0 success, 1 failure (not found, corrupt, mismatch, I/O), 2 usage.\n"
          "Run 'mkkv COMMAND --help' for a command's options.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
        help(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "-V") || !strcmp(name, "--version")) {
        printf("mkkv %s\n", KVRO_VERSION_STRING);
        return EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            help(stdout);
            return EXIT_OK;
        }
        name = argv[2];
        for (size_t i = 0; commands[i]; i++)
            if (!strcmp(commands[i]->name, name)) {
                fputs(commands[i]->help, stdout);
                return EXIT_OK;
            }
    }
    for (size_t i = 0; commands[i]; i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "mkkv: unknown command '%s'\nTry 'mkkv --help'.\n", quoted(name));
    return EXIT_USAGE;
}

/* core/cli/cmd_eval.c - `simmimctl eval CONFIG --checkpoint FILE`: the short form of a `task:
 * eval` run, what users type first. The config is read with task=eval and
 * train_config.resume_ckpt=FILE added to its overrides, and the trainer evaluates (sm_train):
 * eval-config.yaml, eval-summary.json, eval-confusion.csv and an eval record in metrics.jsonl
 * go into output_dir (docs/outputs.md); top-1, top-5 and the mean class accuracy are printed. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char eval_usage[] =
    "usage: simmimctl eval CONFIG --checkpoint FILE [--output-dir DIR] [--backend NAME]\n"
    "                   [--options key=value ...] [--plugin-dir DIR]\n\n"
    "Evaluates the weights of a checkpoint (a fine-tuning checkpoint, or one in the official\n"
    "naming) on the evaluation split of CONFIG's finetune_dataset: the same as `simmimctl run`\n"
    "with task: eval and train_config.resume_ckpt: FILE. Images get the evaluation transform;\n"
    "prints top-1 (overall accuracy), top-5 and the mean of the per-class accuracies.\n\n"
    "Writes into output_dir (a training run's own files there are left alone):\n"
    "eval-config.yaml, eval-summary.json, eval-confusion.csv (rows: true class, columns:\n"
    "predicted class), and an eval record appended to metrics.jsonl.\n\n"
    "  --checkpoint FILE  the weights to evaluate (required)\n"
    "  --output-dir DIR   where the files go (default: the config's output_dir)\n"
    "  --backend NAME     the compute backend (default: the config's backend.name)\n";

static const char *const eval_values[] = {"--checkpoint", "--output-dir", "--backend"};
static const sm_cli_command eval_cmd = {"eval", eval_usage, eval_values, NULL, 3, NULL, 1, 1};
enum { V_CKPT, V_OUTPUT_DIR, V_BACKEND };

/* The command's flags as config overrides, after the user's own (so they win): task=eval,
 * train_config.resume_ckpt, and output_dir / backend.name when given. */
static int eval_overrides(sm_cli_session *s)
{
    const char *ckpt = s->values[V_CKPT];
    struct stat st;
    if (!ckpt) {
        fprintf(stderr, "simmimctl eval: --checkpoint FILE is required (see --help)\n");
        return SM_EXIT_USAGE;
    }
    int e = stat(ckpt, &st) != 0 ? errno : 0;
    if (e || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "simmimctl eval: --checkpoint %s: %s\n", ckpt,
                e ? strerror(e) : "not a regular file");
        return SM_EXIT_USAGE;
    }
    if (sm_cli_add_option(&s->o, "task", "eval") ||
        sm_cli_add_option(&s->o, "train_config.resume_ckpt", ckpt) ||
        (s->values[V_OUTPUT_DIR] &&
         sm_cli_add_option(&s->o, "output_dir", s->values[V_OUTPUT_DIR])) ||
        (s->values[V_BACKEND] && sm_cli_add_option(&s->o, "backend.name", s->values[V_BACKEND]))) {
        fprintf(stderr, "simmimctl: out of memory\n");
        return SM_EXIT_FAILURE;
    }
    return 0;
}

/* The evaluation; its result on stdout. */
static int eval_run(sm_cli_session *s)
{
    sm_train_result res;
    int rc = sm_train(s->reg, s->cfg, NULL, &res, &s->err);
    if (rc) return sm_cli_session_fail(s, sm_cli_exit_code(rc == SM_ECONFIG ? rc : SM_EDATA));
    char dir[4096] = "output";
    sm_cfg_path(s->root, "output_dir", dir, sizeof dir);
    printf("eval: top-1 %.2f %%, top-5 %.2f %%, mean class accuracy ", res.eval_top1,
           res.eval_top5);
    if (res.eval_mean_class >= 0)
        printf("%.2f %%", res.eval_mean_class);
    else
        printf("n/a");
    printf(" (%s on %s; confusion matrix in %s/eval-confusion.csv)\n", s->values[V_CKPT],
           s->o.config, dir);
    return 0;
}

int sm_cmd_eval(int argc, char **argv)
{
    sm_cli_session s;
    int rc = sm_cli_session_begin(&s, &argc, argv, &eval_cmd);
    if (!rc) rc = eval_overrides(&s);
    if (!rc) rc = sm_cli_session_config(&s, false);
    if (!rc) rc = eval_run(&s);
    return sm_cli_session_end(&s, rc);
}

"""Answer questions on raw text with a model folder written by question_answering_squad.py.

    python question_answering_infer.py --model_dir work_dir/squad/model \
        --question "Who wrote it?" --context "It was written by Ada in 1843."
    python question_answering_infer.py --model_dir work_dir/squad/model --input_file dev-v1.1.json

Prints one JSON line per question: {"id", "answer", "start", "end", "score"}, where start/end are
character offsets into the context (context[start:end] == answer; both null when a SQuAD v2.0 model
finds no answer) and score is the answer's probability among the n-best candidates. Long contexts are
windowed as in training: the folder records the run's --max_seq_length, --doc_stride and
--max_query_length. The folder is all it needs: no Megatron config, checkpoint or recipe flag.
"""
from nmod_nlp import recipe
from nmod_nlp.inference import QuestionAnswerer


def parse_args(argv=None):
    p = recipe.infer_parser(__doc__, work_dir="work_dir/squad",
                            input_file="a SQuAD-format JSON file: every question in it (answers not needed)")
    p.add_argument("--question", help="one question (with --context)")
    p.add_argument("--context", help="the text to find its answer in (with --question)")
    p.set_defaults(batch_size=8)
    over = p.add_argument_group("settings (default: the training run's, as the folder records them)")
    over.add_argument("--n_best_size", type=int)
    over.add_argument("--max_answer_length", type=int)
    over.add_argument("--null_score_diff_threshold", type=float)
    args = p.parse_args(argv)
    if args.input_file and (args.question or args.context):
        p.error("pass either --input_file or --question with --context, not both")
    if not args.input_file and not (args.question and args.context is not None):
        p.error("pass --question and --context, or --input_file")
    recipe.check_files_exist(p, args, ["input_file"])
    return args


def main(argv=None) -> list:
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in ("n_best_size", "max_answer_length", "null_score_diff_threshold")
                if getattr(args, k) is not None}
    qa = recipe.load_predictor(QuestionAnswerer, args, **settings)
    if args.input_file:
        return recipe.print_json_lines(qa.answer_file(args.input_file))
    return recipe.print_json_lines(qa.answer([{"id": "0", "question": args.question, "context": args.context}]))


if __name__ == "__main__":
    recipe.run(main)

#!/usr/bin/python3
"""Reference renders of chat templates: Python's jinja2 configured exactly as Hugging Face transformers
configures it (transformers/utils/chat_template_utils.py, `_compile_jinja_template`).

Usage: render_templates.py --templates DIR --conversations FILE.json --out FILE.json
                           [--bos-token S] [--eos-token S] [--now YYYY-MM-DD] [--only STEM]
       render_templates.py --cases CASES.json --out FILE.json [--now YYYY-MM-DD]

Renders every DIR/*.jinja on every conversation of FILE.json, with and without add_generation_prompt,
and writes {"now":…, "bos_token":…, "eos_token":…, "templates": {name: {conversation: {"0"|"1":
{"output": text} | {"error": message, "error_type": class}}}}}.
With --cases, renders each {"name", "template", "context"} of CASES.json (the context on top of the
defaults transformers passes: messages=[], tools=None, documents=None, add_generation_prompt=False,
bos_token="", eos_token="") and writes {"now":…, "cases": {name: result}}.

Non-obvious choice: `strftime_now` is given a fixed datetime (midnight of --now) so that Hearth's
`now` option can reproduce dates exactly; everything else is transformers' own set-up, including
passing tools=None and documents=None explicitly (so `tools is defined` is true, `tools is none` too).
"""
import argparse
import datetime
import json
import pathlib
import sys

try:
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:  # the test reports this line
    sys.stderr.write(f"render_templates.py: jinja2 is not importable with {sys.executable}: {e}\n")
    sys.exit(3)


def make_env(now):
    class AssistantTracker(Extension):
        # `{% generation %}…{% endgeneration %}` renders its body through a caller, as transformers does.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

        @jinja2.pass_eval_context
        def _generation_support(self, context, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_one(env, template, conversation, add_generation_prompt, bos, eos):
    # A conversation is a list of messages, or {"messages": [...], "context": {more variables}}.
    if isinstance(conversation, dict):
        messages, extra = conversation["messages"], conversation.get("context", {})
    else:
        messages, extra = conversation, {}
    try:
        if isinstance(template, Exception):
            raise template
        context = dict(messages=messages, tools=None, documents=None,
                       add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)
        context.update(extra)
        text = template.render(**context)
        return {"output": text}
    except Exception as e:  # every failure is part of the expected result
        return {"error": str(e), "error_type": type(e).__name__}


def render_cases(env, cases):
    out = {}
    for case in cases:
        context = {"messages": [], "tools": None, "documents": None, "add_generation_prompt": False,
                   "bos_token": "", "eos_token": ""}
        context.update(case.get("context", {}))
        try:
            out[case["name"]] = {"output": env.from_string(case["template"]).render(**context)}
        except Exception as e:
            out[case["name"]] = {"error": str(e), "error_type": type(e).__name__}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates")
    ap.add_argument("--conversations")
    ap.add_argument("--cases", help="render the small templates of this JSON file instead")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bos-token", default="<s>")
    ap.add_argument("--eos-token", default="</s>")
    ap.add_argument("--now", default="2024-07-26")
    ap.add_argument("--only", default=None, help="render only this template (file stem)")
    args = ap.parse_args()

    now = datetime.datetime.strptime(args.now, "%Y-%m-%d")
    env = make_env(now)
    if args.cases:
        cases = json.loads(pathlib.Path(args.cases).read_text(encoding="utf-8"))["cases"]
        result = {"now": args.now, "cases": render_cases(env, cases)}
        pathlib.Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        return 0
    if not args.templates or not args.conversations:
        ap.error("--templates and --conversations are required (or --cases)")
    conversations = json.loads(pathlib.Path(args.conversations).read_text(encoding="utf-8"))
    paths = sorted(pathlib.Path(args.templates).glob("*.jinja"))
    if not paths:
        sys.stderr.write(f"render_templates.py: no *.jinja files in {args.templates}\n")
        return 2
    result = {"now": args.now, "bos_token": args.bos_token, "eos_token": args.eos_token, "templates": {}}
    for path in paths:
        if args.only and path.stem != args.only:
            continue
        try:
            template = env.from_string(path.read_text(encoding="utf-8"))
        except Exception as e:  # a syntax error is the expected result of every render
            template = e
        per = {}
        for name, conversation in conversations.items():
            per[name] = {str(int(g)): render_one(env, template, conversation, g, args.bos_token, args.eos_token)
                         for g in (False, True)}
        result["templates"][path.stem] = per
    pathlib.Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``%codeagent`` / ``%%codeagent`` magics and their traitlets configuration (``CodeAgent``)."""

from __future__ import annotations

import contextlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import Configurable

from codeagent.agent.client import MissingAPIKey, make_client
from codeagent.agent.loop import AgentSettings
from codeagent.agent.trace import CodeAgentResult
from codeagent.kernel_ext.expand import expand_prompt
from codeagent.kernel_ext.options import split_options
from codeagent.kernel_ext.session import Session
from codeagent.sandbox.policy import SandboxPolicy
from codeagent.widgets.render import SECTIONS, render_bundle


@magics_class
class CodeAgent(Magics, Configurable):
    """Ask a question; the model answers by writing one Python script that calls your ``@tool`` functions."""

    model = Unicode("claude-sonnet-5-5", help="Anthropic model name.").tag(config=True)
    max_steps = Int(10, help="Model requests per call before stopping without an answer.").tag(config=True)
    max_tokens = Int(8192, help="max_tokens of each model request.").tag(config=True)
    output_chars = Int(20_000, help="Script output shown to the model, then truncated visibly.").tag(config=True)
    base_url = Unicode(
        None, allow_none=True, help="Messages API base URL (default: ANTHROPIC_BASE_URL or Anthropic's)."
    ).tag(config=True)
    timeout = Float(120.0, help="Wall-clock seconds one script may run.").tag(config=True)
    memory_mb = Int(2048, help="Memory limit of the sandbox kernel (MiB).").tag(config=True)
    cpu_seconds = Int(60, help="CPU seconds one script may use.").tag(config=True)
    sandbox_mode = Unicode(
        "auto", help="auto | namespaces | landlock | unsandboxed (no protection: explicit opt-in)."
    ).tag(config=True)
    show = List(Unicode(), default_value=[], help=f"Sections of the final view to open: {', '.join(SECTIONS)}.").tag(
        config=True
    )
    warm_start = Bool(True, help="Start a sandbox kernel when the extension loads.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell, **kwargs)
        self.session = Session()
        if self.warm_start:
            # an invalid config is reported on first use instead
            with contextlib.suppress(ValueError):
                self.session.warm_up(self.policy())

    def policy(self, **overrides: Any) -> SandboxPolicy:
        base = SandboxPolicy(
            mode=self.sandbox_mode,
            wall_seconds=self.timeout,
            memory_mb=self.memory_mb,  # type: ignore[arg-type]
            cpu_seconds=self.cpu_seconds,
            output_chars=self.output_chars,
        )
        return base.merged(**overrides)

    @no_var_expand
    @magic_arguments()
    @argument("--model", help="Model for this call (default: CodeAgent.model).")
    @argument("--max-steps", type=int, help="Model requests before giving up (default: CodeAgent.max_steps).")
    @argument("-o", "--output", metavar="NAME", help="Also store the result object in this variable.")
    @argument("--timeout", type=float, help="Wall-clock seconds one script may run.")
    @argument("--base-url", help="Messages API base URL for this call.")
    @argument("--show", help=f"Comma-separated sections to open: {','.join(SECTIONS)}.")
    @argument("--new", action="store_true", help="Start a new conversation.")
    @argument("--reset", action="store_true", help="Start a new conversation and restart the sandbox.")
    @line_cell_magic
    def codeagent(self, line: str, cell: str | None = None) -> CodeAgentResult | None:
        """Ask the model; it writes one Python script that calls your tools in a sandboxed kernel.

        Usage::

            %codeagent [options] question
            %%codeagent [options]
            question, on as many lines as you like

        ``{name}`` in the question inserts the value of a notebook variable; ``{{`` and ``}}`` are literal
        braces. Only what the script prints reaches the model; the answer is shown with the code, every
        tool call and the script output folded underneath.
        """
        parser = self.codeagent.parser  # type: ignore[attr-defined]
        tokens, prompt = split_options(line, parser)
        args = parser.parse_args(tokens)
        if cell is not None:
            prompt = (prompt + "\n" + cell).strip() if prompt else cell.strip()
        if args.reset:
            self.session.close()
            self.session.new_conversation()
        elif args.new:
            self.session.new_conversation()
        if not prompt:
            if args.new or args.reset:
                print("codeagent: started a new conversation" + (" with a fresh sandbox." if args.reset else "."))
                return None
            raise UsageError("%codeagent needs a question, e.g. %codeagent How many rows are in df?")
        prompt = expand_prompt(prompt, self.shell.user_ns if self.shell else {})
        try:
            client = make_client(base_url=args.base_url or self.base_url)
        except MissingAPIKey as e:
            raise UsageError(str(e)) from None
        settings = AgentSettings(
            model=args.model or self.model,
            max_tokens=self.max_tokens,
            max_steps=args.max_steps or self.max_steps,
            output_chars=self.output_chars,
        )
        if settings.max_steps < 1:
            raise UsageError("--max-steps must be at least 1")
        try:
            policy = self.policy(wall_seconds=args.timeout)
        except ValueError as e:
            raise UsageError(f"invalid sandbox setting: {e}") from None
        sections = [s.strip() for s in args.show.split(",")] if args.show else list(self.show)
        unknown = [s for s in sections if s not in SECTIONS and s != "all"]
        if unknown:
            raise UsageError(f"--show takes {', '.join(SECTIONS)} or all; not {', '.join(unknown)}")
        if "all" in sections:
            sections = list(SECTIONS)
        handle = display({"text/plain": "codeagent: working…"}, raw=True, display_id=True)
        result = self.session.ask(prompt, client, settings, policy)
        bundle = render_bundle(result, sections)
        if handle is not None:
            handle.update(bundle, raw=True)
        else:
            display(bundle, raw=True)
        if args.output:
            if not args.output.isidentifier():
                raise UsageError(f"-o needs a variable name, not {args.output!r}")
            self.shell.user_ns[args.output] = result
        return result

    def close(self) -> None:
        self.session.close()

"""The ``%codeagent`` / ``%%codeagent`` magics and their traitlets configuration (``CodeAgent``).

Longer than most modules for a reason: the project's style is one Magics + Configurable class (as in jupysql),
whose traits are the whole configuration surface and whose options are the whole call surface. The work behind
them lives elsewhere: ``settings.py`` (traits → models), ``options.py``, ``data.py``, ``mentions.py``, ``session.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from traitlets import Bool, Bunch, Dict, Enum, Float, Int, List, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from codeagent.agent.budget import Budget, Limits, UnknownPrice
from codeagent.agent.cassette import MODES as CASSETTE_MODES
from codeagent.agent.cassette import Cassette, CassetteError, CassetteShelf, make_cassette_client
from codeagent.agent.client import ClientCache, MissingAPIKey
from codeagent.agent.loop import AgentSettings
from codeagent.agent.notebook_cell import CellError
from codeagent.agent.pricing import estimate_cost, format_cost
from codeagent.agent.profiles import PROFILE_NAMES, choose_profile
from codeagent.agent.trace import CodeAgentResult, TraceEvent
from codeagent.kernel_ext.asking import NotebookAsker
from codeagent.kernel_ext.context import notebook_context
from codeagent.kernel_ext.data import DataError, parse_names
from codeagent.kernel_ext.expand import UnresolvedName, expand_option, expand_prompt
from codeagent.kernel_ext.handover import hand_over_all, named_in_question, reasons
from codeagent.kernel_ext.mentions import take_mentions
from codeagent.kernel_ext.options import UnknownOption, show_defaults_in_help, split_options
from codeagent.kernel_ext.session import Session
from codeagent.kernel_ext.settings import agent_settings, check, sandbox_policy, setting, setting_names
from codeagent.sandbox.host.info import sandbox_info
from codeagent.sandbox.host.manager import SandboxError
from codeagent.sandbox.host.policy import SandboxPolicy
from codeagent.tools.approval import Approvals, check_rules
from codeagent.tools.render import sources_table
from codeagent.widgets.live import LiveView
from codeagent.widgets.render import SECTIONS, UNSANDBOXED_WARNING, render_bundle
from codeagent.widgets.sanitize import safe_bundle
from codeagent.widgets.terminal import TerminalView

#: Options whose values may hold ``{name}`` of a notebook variable (``--base-url {srv.url}``).
_EXPANDED_OPTIONS = ("model", "output", "data", "base_url", "record", "replay", "show")

SETTINGS = setting_names()


@magics_class
class CodeAgent(Magics, Configurable):
    """Ask a question; the model answers by writing one Python script that calls your ``@tool`` functions."""

    # The model (AgentSettings) and the sandbox (SandboxPolicy): defaults, limits and help come from those
    # fields; a value outside a field's limits is refused at %config time.
    model = setting(AgentSettings, "model")
    max_steps = setting(AgentSettings, "max_steps")
    max_tokens = setting(AgentSettings, "max_tokens")
    output_chars = setting(AgentSettings, "output_chars")  # also SandboxPolicy.output_chars
    tool_prompt_tokens = setting(AgentSettings, "tool_prompt_tokens")
    defer_direct_tools = setting(AgentSettings, "defer_direct_tools")
    sandbox_mode = setting(SandboxPolicy, "mode")
    timeout = setting(SandboxPolicy, "wall_seconds")
    memory_mb = setting(SandboxPolicy, "memory_mb")
    cpu_seconds = setting(SandboxPolicy, "cpu_seconds")
    max_processes = setting(SandboxPolicy, "max_processes")
    max_file_mb = setting(SandboxPolicy, "max_file_mb")
    max_open_files = setting(SandboxPolicy, "max_open_files")
    output_hard_bytes = setting(SandboxPolicy, "output_hard_bytes")
    sandbox_uid = setting(SandboxPolicy, "sandbox_uid")
    sandbox_allow_root = setting(SandboxPolicy, "allow_root")
    sandbox_allow_no_seccomp = setting(SandboxPolicy, "allow_no_seccomp")
    bridge_request_mb = setting(SandboxPolicy, "bridge_request_mb")
    bridge_reply_mb = setting(SandboxPolicy, "bridge_reply_mb")
    # host-side limits that hold whatever the script does (README: Security)
    bridge_buffer_mb = setting(SandboxPolicy, "bridge_buffer_mb")
    bridge_connections = setting(SandboxPolicy, "bridge_connections")
    bridge_queued_reply_mb = setting(SandboxPolicy, "bridge_queued_reply_mb")
    iopub_call_mb = setting(SandboxPolicy, "iopub_call_mb")
    iopub_message_mb = setting(SandboxPolicy, "iopub_message_mb")
    iopub_queue = setting(SandboxPolicy, "iopub_queue")
    iopub_queued_mb = setting(SandboxPolicy, "iopub_queued_mb")
    trace_value_chars = setting(SandboxPolicy, "trace_value_chars")
    workspace_mb = setting(SandboxPolicy, "workspace_mb")
    workspace_inodes = setting(SandboxPolicy, "workspace_inodes")

    base_url = Unicode(
        None, allow_none=True, help="Messages API base URL (default: ANTHROPIC_BASE_URL or Anthropic's)."
    ).tag(config=True)
    model_profile = Enum(
        PROFILE_NAMES,
        default_value="auto",
        help="auto (Anthropic's API → anthropic, any other base URL → local) | anthropic | local: how requests "
        "are shaped (tool_choice, stop sequences, temperature, prompt caching, streaming).",
    ).tag(config=True)
    answer_from_output = Bool(
        False, help="The first script's printed output is the answer (one model request per call)."
    ).tag(config=True)
    show = List(Unicode(), default_value=[], help=f"Sections of the final view to open: {', '.join(SECTIONS)}.").tag(
        config=True
    )
    warm_start = Bool(True, help="Start a sandbox kernel when the extension loads.").tag(config=True)
    live = Bool(True, help="Show a live view (status line, model text, tool calls) while a call runs.").tag(config=True)
    view = Enum(
        ("auto", "widget", "text"),
        "auto",
        help="Live view: auto (ipywidgets in a notebook kernel, a status line redrawn in place in a terminal) "
        "| widget | text.",
    ).tag(config=True)
    pool_size = Int(
        1, min=0, help="Spare sandboxes kept started beside the running one (0: none, for small machines)."
    ).tag(config=True)
    api_timeout = Float(600.0, help="Seconds to wait for the API before giving up (after the SDK's retries).").tag(
        config=True
    )
    api_retries = Int(2, help="Retries the anthropic SDK makes on 429/5xx/connection errors.").tag(config=True)
    cassette = Unicode(
        "", help="Cassette (JSON) of recorded model turns, relative to the notebook's directory; '' for none."
    ).tag(config=True)
    cassette_mode = Enum(
        list(CASSETTE_MODES),
        default_value="auto",
        help="auto (replay the cassette if it exists, else record it) | record | replay (no key, no network) | off.",
    ).tag(config=True)
    notebook_context = Enum(
        ["names", "off"],
        "names",
        help="names: tell the model the names, types and shapes of the notebook's DataFrames, arrays, Series and "
        "tables (never values); off: nothing.",
    ).tag(config=True)
    implicit_mentions = Bool(
        True,
        help="With notebook_context 'names': a DataFrame, Series, array or table the question names by a bare "
        "word (sales; sales_df or df_sales for the word 'sales') is handed to the sandbox like @sales (schema, "
        "not rows). False: only @name and --data hand data over.",
    ).tag(config=True)

    confirm = Bool(False, help="Show each script and ask before it runs (like --confirm).").tag(config=True)
    approve = Dict(
        default_value={},
        help='Decide tool approvals ahead of time: {"send_email": "allow"}; values allow | deny | ask, keys are '
        'tool names or patterns such as "github_*".',
    ).tag(config=True)
    max_tool_calls = Int(None, allow_none=True, help="Tool calls one call may make (None: no limit).").tag(config=True)
    max_cost = Float(None, allow_none=True, help="US$ one call may spend on the model (None: no limit).").tag(
        config=True
    )
    max_input_tokens = Int(
        None, allow_none=True, help="Input tokens (cache reads and writes included) one call may use (None: no limit)."
    ).tag(config=True)
    session_budget_usd = Float(
        None, allow_none=True, help="US$ all calls of this notebook session may spend (None: no limit)."
    ).tag(config=True)

    @validate("approve")
    def _check_approve(self, proposal: Any) -> dict[str, str]:
        try:
            return check_rules(proposal["value"])
        except ValueError as e:
            raise TraitError(str(e)) from None

    @validate("max_tool_calls", "max_cost", "max_input_tokens", "session_budget_usd")
    def _check_limit(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"CodeAgent.{proposal['trait'].name} must be >= 0 or None (no limit), not {value}")
        return value

    @validate(*SETTINGS)
    def _check_setting(self, proposal: Bunch) -> Any:
        return check(proposal["trait"], proposal["value"])

    gateway_url = Unicode(
        None,
        allow_none=True,
        help="Run sandboxes through this Jupyter Kernel / Enterprise Gateway (default: JUPYTER_GATEWAY_URL; "
        "unset: on this machine).",
    ).tag(config=True)
    gateway_token = Unicode(
        None, allow_none=True, help="Token for the gateway (default: JUPYTER_GATEWAY_AUTH_TOKEN); never printed."
    ).tag(config=True)
    gateway_kernel_name = Unicode(
        "codeagent-sandbox", help="Kernelspec the gateway starts sandboxes from (codeagent's remote launcher)."
    ).tag(config=True)

    mcp_config = Unicode(
        "", help="MCP servers from a .mcp.json / Claude Desktop config (mcpServers), relative to the notebook."
    ).tag(config=True)

    @validate("mcp_config")
    def _check_mcp_config(self, proposal: Any) -> str:
        path = proposal["value"]
        if path:
            from codeagent.tools.mcp.config import McpConfigError, resolve, server_entries

            try:
                server_entries(resolve(path, Path.cwd()))
            except McpConfigError as e:
                raise TraitError(str(e)) from None
        return str(path)

    @observe("mcp_config")
    def _load_mcp_config(self, change: Any) -> None:
        if change["new"]:
            self.add_config_servers(change["new"])

    def add_config_servers(self, path: str) -> list[str]:
        """Add (or replace) every server of an MCP config file; returns their names."""
        from codeagent.tools.mcp.config import resolve, server_entries
        from codeagent.tools.mcp.servers import add_mcp_server

        entries = server_entries(resolve(path, Path.cwd()))
        for name, kwargs in entries.items():
            add_mcp_server(name, servers=self.session.servers, **kwargs)
        return list(entries)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell, **kwargs)
        self.session = Session(pool_size=self.pool_size)
        self.clients = ClientCache()
        self._unshown: list[CodeAgentResult] = []  # results of this cell the display hook has not shown
        self._refresh_help()
        if shell is not None:
            self._hook_into(shell)
        # Shut the sandboxes down when the notebook kernel exits (the launcher also watches for a hard death).
        atexit.register(self.session.close)
        self.cassettes = CassetteShelf()
        self._use_gateway()
        if self.mcp_config:  # from ipython_config.py: observers do not fire for the initial value
            try:
                self.add_config_servers(self.mcp_config)
            except (ValueError, ImportError) as e:
                print(f"codeagent: {e}", file=sys.stderr)
        if self.warm_start:
            self.session.warm_up(self.policy())

    def _use_gateway(self) -> None:
        """Point the session at the configured gateway (or at this machine)."""
        from codeagent.sandbox.host.gateway.settings import GatewaySettings

        self.session.gateway = GatewaySettings.from_config(
            self.gateway_url, self.gateway_token, self.gateway_kernel_name
        )

    def policy(self, **overrides: Any) -> SandboxPolicy:
        """The sandbox policy of these settings; non-None ``overrides`` (per-call options) win."""
        return sandbox_policy(self, **overrides)

    @no_var_expand
    @magic_arguments()
    @argument("--model", help="Model for this call (default: {default}).")
    @argument("--max-steps", type=int, help="Model requests before giving up (default: {default}).")
    @argument("-o", "--output", metavar="NAME", help="Also store the result object in this variable.")
    @argument("--data", metavar="NAMES", help="Notebook variables to hand to the sandbox (comma-separated).")
    @argument("--sample", type=int, metavar="N", help="Also show the model the first N rows of each --data value.")
    @argument("--timeout", type=float, help="Wall-clock seconds one script may run (default: {default}).")
    @argument("--base-url", help="Messages API base URL for this call (default: {default}).")
    @argument(
        "--answer-from-output",
        action="store_true",
        help="Answer with the script's printed output: one model request, no second one to phrase it.",
    )
    @argument("--record", metavar="PATH", help="Record this call's model turns to a cassette file.")
    @argument("--replay", metavar="PATH", help="Replay model turns from a cassette file (no key, no network).")
    @argument(
        "--cell",
        nargs="?",
        const="result",
        metavar="NAME",
        help="Put the scripts the model ran in a new cell below, rewritten to run in this notebook (unsandboxed) "
        "without the model; set_result(x) becomes NAME = x (--cell=NAME; default result).",
    )
    @argument("--show", help=f"Comma-separated sections to open: {','.join(SECTIONS)} (default: {{default}}).")
    @argument("--confirm", action="store_true", help="Show each script and ask before it runs.")
    @argument(
        "--max-tool-calls", type=int, metavar="N", help="Stop after N tool calls (default: CodeAgent.max_tool_calls)."
    )
    @argument("--max-cost", type=float, metavar="USD", help="Stop before spending more than USD on the model.")
    @argument("--max-input-tokens", type=int, metavar="N", help="Stop before the model has read N input tokens.")
    @argument("--new", action="store_true", help="Start a new conversation.")
    @argument("--reset", action="store_true", help="Start a new conversation and restart the sandbox.")
    @argument("--usage", action="store_true", help="Show token usage and estimated cost of this session.")
    @argument("--sandbox-info", action="store_true", help="Show which sandbox protections are active here.")
    @argument("--tools", action="store_true", help="List every tool source (@tool, MCP servers) and its tools.")
    @line_cell_magic
    def codeagent(self, line: str, cell: str | None = None) -> CodeAgentResult | None:
        """Ask the model; it writes one Python script that calls your tools in a sandboxed kernel.

        Usage::

            %codeagent [options] question
            %%codeagent [options]
            question, on as many lines as you like

        ``{name}`` in the question inserts the value of a notebook variable; ``{{`` and ``}}`` are literal
        braces. ``@name`` hands a notebook variable to the sandbox, like ``--data name``; ``@@`` is a literal
        ``@``. Only what the script prints reaches the model; the answer is shown with the code, every
        tool call and the script output folded underneath.
        """
        parser = self.codeagent.parser
        try:
            tokens, prompt = split_options(line, parser)
        except UnknownOption as e:
            raise UsageError(str(e)) from None
        args = parser.parse_args(tokens)
        self._expand_options(args)
        if cell is not None:
            prompt = (prompt + "\n" + cell).strip() if prompt else cell.strip()
        if args.usage:
            print(self.usage_report())
            return None
        self._use_gateway()
        if args.sandbox_info:
            print(self._sandbox_info() + "\n" + self.session.sandboxes_report())
            return None
        if args.tools:
            print(sources_table(self.session.toolbox().sources))
            return None
        if args.reset:
            self.session.reset_sandbox()
            self.session.new_conversation()
        elif args.new:
            self.session.new_conversation()
        if not prompt:
            if args.new or args.reset:
                print("codeagent: started a new conversation" + (" with a fresh sandbox." if args.reset else "."))
                return None
            raise UsageError("%codeagent needs a question, e.g. %codeagent How many rows are in df?")
        namespace: dict[str, Any] = self.shell.user_ns if self.shell else {}
        prompt, mentioned = take_mentions(prompt, namespace, reserved=self._tool_names())
        named = self._named_in_question(prompt)  # before {name} expansion: only the user's own words count
        prompt = expand_prompt(prompt, namespace)
        if args.max_steps is not None and args.max_steps < 1:
            raise UsageError("--max-steps must be at least 1")
        try:
            settings = agent_settings(
                self,
                model=args.model,
                max_steps=args.max_steps,
                profile=choose_profile(self.model_profile, args.base_url or self.base_url),
                answer_from_output=args.answer_from_output or self.answer_from_output,
            )
            policy = self.policy(wall_seconds=args.timeout)
        except ValueError as e:
            raise UsageError(f"invalid setting: {e}") from None
        sections = self._sections(args.show)
        if args.output and not args.output.isidentifier():
            raise UsageError(f"-o needs a variable name, not {args.output!r}")
        if args.cell is not None and not args.cell.isidentifier():
            raise UsageError(f"--cell takes a variable name for the result, e.g. --cell=total; not {args.cell!r}")
        budget = self._budget(args, settings.model)
        approvals = Approvals(NotebookAsker(), self.approve, confirm=args.confirm or self.confirm)
        try:
            client, cassette = self._client(args)
        except (MissingAPIKey, CassetteError) as e:
            raise UsageError(str(e)) from None

        try:
            data_section, handed = self._hand_over_data(args, reasons(self._data_names(args), mentioned, named), policy)
        except UsageError as e:
            culprits = [n for n in mentioned if f" {n}:" in str(e)]
            if not culprits:
                raise
            raise UsageError(f"{e} (mentioned as @{culprits[0]}; write @@{culprits[0]} for a literal @)") from None
        context = self._notebook_context(list(handed))
        if context:
            data_section = f"{data_section}\n\n{context}" if data_section else context
        result = self._run_with_display(
            prompt,
            client,
            settings,
            policy,
            sections,
            cassette=cassette,
            data_section=data_section,
            approvals=approvals,
            budget=budget,
        )
        result.sections = sections
        result.handed_over = handed
        if args.output:
            self._user_ns()[args.output] = result
        if args.cell is not None:
            self._insert_cell(result, args.cell)
        self._unshown.append(result)
        return result

    def _user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    def _tool_names(self) -> list[str]:
        return [t.name for t in self.session.registry]

    def _insert_cell(self, result: CodeAgentResult, variable: str) -> None:
        """``--cell``: the scripts as a new cell below (IPython's ``set_next_input`` payload)."""
        shell: Any = self.shell
        try:
            tools = self.session.toolbox(report=False)  # the MCP servers' tools too
            source = result.cell_source(variable, registry=tools, namespace=shell.user_ns)
        except CellError as e:
            print(f"codeagent: --cell: {e}.", file=sys.stderr)
            return
        shell.set_next_input(source, replace=False)

    def _notebook_context(self, handed: list[str]) -> str:
        """The system-prompt section naming the notebook's data variables (``notebook_context``)."""
        if self.notebook_context == "off" or self.shell is None:
            return ""
        exclude = {*self.shell.user_ns_hidden, *self._tool_names(), *handed}
        return notebook_context(self.shell.user_ns, exclude=exclude)

    def _budget(self, args: Any, model: str) -> Budget | None:
        """The call's limits (options over config), or None without any; UsageError for a bad one."""
        limits = Limits(
            max_tool_calls=self.max_tool_calls if args.max_tool_calls is None else args.max_tool_calls,
            max_cost=self.max_cost if args.max_cost is None else args.max_cost,
            max_input_tokens=self.max_input_tokens if args.max_input_tokens is None else args.max_input_tokens,
            session_budget_usd=self.session_budget_usd,
        )
        for flag, value in (
            ("--max-tool-calls", limits.max_tool_calls),
            ("--max-cost", limits.max_cost),
            ("--max-input-tokens", limits.max_input_tokens),
        ):
            if value is not None and value < 0:
                raise UsageError(f"{flag} must be >= 0, not {value}")
        if not limits.any():
            return None
        try:
            return Budget(limits, model, session_spent_usd=self.session.spent_usd)
        except UnknownPrice as e:
            raise UsageError(str(e)) from None

    def _expand_options(self, args: Any) -> None:
        """``{name}`` / ``{name.attr}`` in option values (the magic is ``@no_var_expand``: prompts expand apart)."""
        namespace = self.shell.user_ns if self.shell else {}
        for name in _EXPANDED_OPTIONS:
            value = getattr(args, name, None)
            if isinstance(value, str) and "{" in value:
                try:
                    setattr(args, name, expand_option(value, namespace))
                except UnresolvedName as e:
                    raise UsageError(f"--{name.replace('_', '-')}: {e}") from None

    # -- the cell's result is the final view ---------------------------------------------------------

    def show_unshown(self, outcome: Any = None) -> None:
        """After a cell: display the final view of every call whose result the display hook did not show
        (``r = %codeagent …``, a call that is not the cell's last line)."""
        shown = getattr(outcome, "result", None)
        unshown, self._unshown = self._unshown, []
        for result in unshown:
            if result is not shown:
                display(result)

    def forget_unshown(self, *_: Any) -> None:
        self._unshown = []

    @observe("pool_size")
    def _on_pool_size(self, change: Any) -> None:
        self.session.pool_size = change.new
        if self.session._pool is not None:
            self.session._pool.size = change.new

    @observe("model", "max_steps", "timeout", "base_url", "show")
    def _on_default_change(self, change: Any) -> None:
        self._refresh_help()

    def _refresh_help(self) -> None:
        """``%codeagent?`` shows the defaults in force (the configured values), not the trait names."""
        registered = self.shell.magics_manager.registry.get("CodeAgent") if self.shell is not None else None
        if registered is not None and registered is not self:
            return  # the help text belongs to the class: only the notebook's own instance writes it
        function = type(self).codeagent
        parser = function.parser
        defaults = {
            "model": self.model,
            "max_steps": self.max_steps,
            "timeout": f"{self.timeout:g} s",
            "base_url": self.base_url or "ANTHROPIC_BASE_URL, else Anthropic's API",
            "show": ",".join(self.show) or "none",
        }
        function.__doc__ = show_defaults_in_help(parser, defaults)

    def _client(self, args: Any) -> tuple[Any, Cassette | None]:
        """The API client for a call: live, or recording to / replaying from a cassette."""
        options: dict[str, Any] = {"base_url": args.base_url or self.base_url, "timeout": self.api_timeout}
        choice = self.cassettes.choose(
            record=args.record, replay=args.replay, path=self.cassette, mode=self.cassette_mode
        )
        if choice is None:
            # one client per setting, reused: building one costs ~20 ms (loading the CA certificates)
            return self.clients.get(max_retries=self.api_retries, **options), None
        mode, cassette = choice
        return make_cassette_client(mode, cassette, max_retries=self.api_retries, **options), cassette

    def _sections(self, show: str | None) -> list[str]:
        sections = [s.strip() for s in show.split(",") if s.strip()] if show else list(self.show)
        unknown = [s for s in sections if s not in SECTIONS and s != "all"]
        if unknown:
            raise UsageError(f"--show takes {', '.join(SECTIONS)} or all; not {', '.join(unknown)}")
        return list(SECTIONS) if "all" in sections else sections

    def _run_with_display(
        self,
        prompt: str,
        client: Any,
        settings: AgentSettings,
        policy: SandboxPolicy,
        sections: list[str],
        cassette: Cassette | None = None,
        data_section: str = "",
        approvals: Approvals | None = None,
        budget: Budget | None = None,
    ) -> CodeAgentResult:
        """Run the call under a live view that shrinks to nothing at the end: the final view is the result's own
        display (the cell's execute_result), so a frontend that drops display updates still records the answer."""
        if policy.mode == "unsandboxed":
            print(f"codeagent: WARNING: {UNSANDBOXED_WARNING}", file=sys.stderr)
        view: LiveView | TerminalView | None = None
        handle = None
        if self.live and self._view_kind() == "widget":
            view = LiveView(settings.max_steps)
            handle = display(view, display_id=True)
        elif self.live:
            view = TerminalView(settings.max_steps)

        def listener(event: TraceEvent) -> None:
            if view is not None:
                view(event)
            if event.kind == "display":
                bundle = safe_bundle(event.data)
                if bundle is not None:
                    display(bundle["data"], metadata=bundle["metadata"], raw=True)

        replayed_before = cassette.replayed if cassette is not None else 0
        try:
            result = self.session.ask(
                prompt,
                client,
                settings,
                policy,
                listener,
                data_section=data_section,
                approvals=approvals,
                budget=budget,
            )
        except KeyboardInterrupt:
            result = CodeAgentResult(
                prompt=prompt, model=settings.model, status="interrupted", error="Interrupted by the user."
            )
        except SandboxError as e:
            result = CodeAgentResult(prompt=prompt, model=settings.model, status="error", error=str(e))
        finally:
            if handle is not None:
                handle.update({"text/plain": ""}, raw=True)
            if view is not None:
                view.close()
        result.replayed = cassette is not None and cassette.replayed > replayed_before
        return result

    def _view_kind(self) -> str:
        if self.view != "auto":
            return str(self.view)
        # a notebook kernel (ipykernel) has a frontend that may draw widgets; a terminal IPython has none
        return "widget" if getattr(self.shell, "kernel", None) is not None else "text"

    def _data_names(self, args: Any) -> list[str]:
        """The ``--data`` names."""
        try:
            return parse_names(args.data) if args.data else []
        except DataError as e:
            raise UsageError(str(e)) from None

    def _named_in_question(self, question: str) -> list[str]:
        """Data variables the question names by a bare word (``implicit_mentions``; none with the context off)."""
        if self.notebook_context == "off" or not self.implicit_mentions or self.shell is None:
            return []
        return named_in_question(question, self.shell.user_ns, {*self.shell.user_ns_hidden, *self._tool_names()})

    def _hand_over_data(self, args: Any, why: dict[str, str], policy: SandboxPolicy) -> tuple[str, dict[str, str]]:
        """``--data``/``@name``/named/``--sample``: copy the variables into the sandbox; the prompt section with
        their schema, and the variables handed over with why."""
        if args.sample is not None and not why:
            raise UsageError("--sample needs --data (or an @name in the question), e.g. --data df --sample 5")
        if not why:
            return "", {}
        try:
            return hand_over_all(
                self.session.sandbox(policy),
                why,
                self._user_ns(),
                sample=args.sample or 0,
                reserved=[t.name for t in self.session.registry],
            )
        except DataError as e:
            raise UsageError(str(e)) from None

    def _sandbox_info(self) -> str:
        gateway = self.session.gateway
        if gateway is None:
            return sandbox_info(self.policy())
        from codeagent.sandbox.host.gateway.sandbox import GatewaySandbox, remote_sandbox_info

        try:
            sandbox = self.session.sandbox(self.policy())
            assert isinstance(sandbox, GatewaySandbox)
            return remote_sandbox_info(gateway, sandbox)
        except SandboxError as e:
            return f"codeagent sandbox at the gateway {gateway.url}: cannot start one.\n  {e}"

    def usage_report(self) -> str:
        """Token usage and estimated cost of this notebook session."""
        u = self.session.usage
        cost = estimate_cost(self.model, u)
        return (
            f"codeagent session: {self.session.calls} call(s), {u.requests} model request(s)\n"
            f"  input tokens {u.input_tokens:,} · output tokens {u.output_tokens:,} · "
            f"cache read {u.cache_read_input_tokens:,} · cache write {u.cache_creation_input_tokens:,}\n"
            f"  cost at {self.model} prices: {format_cost(cost)}"
            + (
                f"\n  session budget: ${self.session.spent_usd:.4f} of ${self.session_budget_usd:g} spent"
                if self.session_budget_usd is not None
                else ""
            )
        )

    def _hook_into(self, shell: Any) -> None:
        """A result displays as the final view; results the display hook did not show appear after the cell."""
        shell.display_formatter.mimebundle_formatter.for_type(CodeAgentResult, final_view)
        shell.events.register("pre_run_cell", self.forget_unshown)
        shell.events.register("post_run_cell", self.show_unshown)

    def close(self) -> None:
        atexit.unregister(self.session.close)
        if self.shell is not None:
            self.shell.display_formatter.mimebundle_formatter.pop(CodeAgentResult, None)
            for event, callback in (("pre_run_cell", self.forget_unshown), ("post_run_cell", self.show_unshown)):
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister(event, callback)
        self.session.close()


def final_view(result: CodeAgentResult, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """The mime bundle of a finished call: text/plain and static HTML, with the sections it was asked to open."""
    return render_bundle(result, result.sections)

"""Static scanner: every boto3 operation a Lambda function's code can call, and the IAM action it needs.

`python -m tests.aws_calls` prints the call sites per function. tests/deploy/test_iam.py checks the
functions' policies (shared/tools/deploy/iam.py) against what this finds.

How: the function's modules are its `app_function` and event handler modules in zappa_settings.json
(`<app>_local`), plus every module of our packages they import, at any depth, at module level or
inside functions (lazy imports are how this code keeps cold starts small). In those modules a
client is `client("svc")` / `aws.client("svc")` / `boto3.client("svc")` with a literal service, or a
call of a function of ours that returns one (`store.ddb()`); it is followed through variables
(`s3 = client("s3")`, `ddb, n = store.ddb(), 0`, also from an enclosing function) and direct
chains (`client("sqs").send_message(...)`). Each method called on it is an operation, as is the
name given to `get_paginator`/`get_waiter`, and `getattr(client(...), op)` in a function of ours
turns each literal `op` its callers pass into an operation (shared/platform/auth/cognito.py `_call`).

The granularity is the module: an operation in a module the function imports counts even if that
function never takes the branch that calls it (a deliberate over-approximation: the policy may
allow slightly more, never less). Modules that never run in Lambda are not followed.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reqsys", "childsys", "taskapp", "shared")
# Deploy tooling, provisioning, the local runner and demo data: run on a developer's machine or in
# CI, never in Lambda (the zips are checked for the runtime's imports, not these). A Lambda module
# importing one of them is reported in `Scan.skipped_imports` (the test requires none).
NEVER_IN_LAMBDA = ("shared.tools",)

# operation (boto3 method) -> IAM action names, where the action is not the operation's own name
# (batch calls are authorised by the single action; S3 names actions after the object operation).
ACTION_OVERRIDES: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "generate_presigned_post"): ("s3:PutObject",),  # the browser's POST is signed with our role
    ("s3", "head_object"): ("s3:GetObject",),
    ("s3", "head_bucket"): ("s3:ListBucket",),
    ("s3", "list_objects"): ("s3:ListBucket",),
    ("s3", "list_objects_v2"): ("s3:ListBucket",),
    ("s3", "delete_objects"): ("s3:DeleteObject",),
    ("s3", "copy_object"): ("s3:GetObject", "s3:PutObject"),  # reads the source, writes the copy
    ("s3", "download_file"): ("s3:GetObject",),  # boto3's transfer manager: HEAD + ranged GETs
    ("s3", "download_fileobj"): ("s3:GetObject",),
    ("s3", "upload_file"): ("s3:PutObject", "s3:AbortMultipartUpload"),  # may go multipart
    ("s3", "upload_fileobj"): ("s3:PutObject", "s3:AbortMultipartUpload"),
    ("sqs", "send_message_batch"): ("sqs:SendMessage",),
    ("sqs", "delete_message_batch"): ("sqs:DeleteMessage",),
    ("sqs", "change_message_visibility_batch"): ("sqs:ChangeMessageVisibility",),
    ("sns", "publish_batch"): ("sns:Publish",),
    ("lambda", "invoke"): ("lambda:InvokeFunction",),
    ("dynamodb", "transact_get_items"): ("dynamodb:GetItem",),
}
# Client methods that are not AWS operations.
NOT_OPERATIONS = {"exceptions", "meta", "can_paginate", "close", "get_paginator", "get_waiter", "waiter_names"}
# TransactWriteItems is authorised per item: the action of each kind of item.
TRANSACT_ITEMS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                  "ConditionCheck": "dynamodb:ConditionCheckItem"}


@dataclass(frozen=True, order=True)
class Call:
    """One call site of one boto3 operation."""

    path: str  # relative to the repository
    line: int
    service: str  # boto3's name: "cognito-idp", "dynamodb"...
    operation: str  # boto3's method: "send_message"
    actions: tuple[str, ...] = ()  # the IAM actions it needs

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.service}.{self.operation} -> {', '.join(self.actions)}"


@dataclass
class Scan:
    modules: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    # (importer, never-in-Lambda module, names imported from it)
    skipped_imports: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)  # what the scanner could not follow, with where
    clients_made: set[tuple[str, int]] = field(default_factory=set)  # (path, line) of each client(...) followed

    def actions(self) -> dict[str, list[Call]]:
        found: dict[str, list[Call]] = {}
        for call in sorted(self.calls):
            for action in call.actions:
                found.setdefault(action, []).append(call)
        return found


# --- modules and imports ------------------------------------------------------------------------


def module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _never_in_lambda(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in NEVER_IN_LAMBDA)


@cache
def _tree(module: str) -> ast.Module:
    path = module_path(module)
    return ast.parse(path.read_text(), str(path))


def _is_package(module: str) -> bool:
    path = module_path(module)
    return path is not None and path.name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if _is_package(module) else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _string_constants(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level names bound to a string or a tuple/list of strings (KIND_MODULES = (...))."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            items = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
            if items and all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
                found[node.targets[0].id] = [i.value for i in items]
    return found


def imports_of(module: str, top_level_only: bool = False) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Modules of ours that `module` imports (anywhere, or only in its top-level code), each with the
    names taken from it, and the dynamic imports that could not be resolved."""
    tree = _tree(module)
    found: dict[str, set[str]] = {}
    unresolved = []
    constants = _string_constants(tree)
    loops = {n.target.id: n.iter.id for n in ast.walk(tree)
             if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and isinstance(n.iter, ast.Name)}
    nodes = _own_nodes(tree)[0] if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:  # `from shared.pipeline import monitor` imports a module
                if module_path(f"{base}.{alias.name}"):
                    found.setdefault(f"{base}.{alias.name}", set())
                else:
                    found.setdefault(base, set()).add(alias.name)
        elif (isinstance(node, ast.Call) and _name(node.func) in ("import_module", "importlib.import_module")
              and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, set())
            elif isinstance(arg, ast.Name) and loops.get(arg.id) in constants:
                for name in constants[loops[arg.id]]:
                    found.setdefault(name, set())
            else:
                unresolved.append(f"{module}:{node.lineno} import_module({ast.unparse(arg)})")
    return {m: tuple(sorted(n)) for m, n in found.items() if _ours(m) and module_path(m)}, unresolved


def _name(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


# --- clients and their calls --------------------------------------------------------------------

Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


def _own_nodes(scope: ast.AST) -> tuple[list[ast.AST], list[tuple[Function, str | None]]]:
    """The nodes of `scope` outside the functions nested in it, and those functions (not deeper),
    each with the class of `scope` it is a method of (None for a plain function)."""
    own, inner = [], []
    todo = [(child, None) for child in ast.iter_child_nodes(scope)]
    while todo:
        node, owner = todo.pop()
        if isinstance(node, Function):
            inner.append((node, owner))
            continue
        own.append(node)
        owner = node.name if isinstance(node, ast.ClassDef) else owner
        todo.extend((child, owner) for child in ast.iter_child_nodes(node))
    return own, inner


def _params(fn: Function) -> list[str]:
    return [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]


class _Module:
    """One module's source and what its names refer to (imported modules and functions of ours)."""

    def __init__(self, module: str):
        self.module = module
        self.tree = _tree(module)
        self.path = str(module_path(module).relative_to(ROOT))
        self.aliases: dict[str, str] = {}  # local name -> module or module.function
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        self.top = {n.name for n in self.tree.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}

    def qualified(self, func: ast.AST, cls: str | None) -> str:
        """What a called expression names: `store.ddb` -> taskapp.store.ddb, `self._wait` -> mod.Class._wait."""
        name = _name(func)
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and cls and rest:
            return f"{self.module}.{cls}.{rest}"
        if head in self.aliases:
            return self.aliases[head] + (f".{rest}" if rest else "")
        if head in self.top:
            return f"{self.module}.{name}"
        return name


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Analysis:
    """Clients through our code: factories (functions returning one), parameters a client is passed
    to, and dispatchers (`getattr(client, op)(...)`); computed to a fixed point, then recorded."""

    def __init__(self, modules: set[str]):
        self.mods = [_Module(m) for m in sorted(modules)]
        self.functions: dict[str, Function] = {}  # qualified name -> definition
        for mod in self.mods:
            for node in mod.tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions[f"{mod.module}.{node.name}"] = node
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            self.functions[f"{mod.module}.{node.name}.{item.name}"] = item
        self.factories: dict[str, set[str]] = {}  # qualified function -> services of the client it returns
        self.dispatchers: dict[str, tuple[set[str], int]] = {}  # qualified -> (services, index of the op parameter)
        self.params: dict[int, dict[str, set[str]]] = {}  # id(function) -> parameter -> services
        self.calls: list[Call] = []
        self.unresolved: list[str] = []
        self.clients_made: set[tuple[str, int]] = set()  # (path, line) of every client(...) followed
        self.changed = False

    def run(self) -> None:
        for _ in range(10):
            self.changed = False
            for mod in self.mods:
                self._visit(mod, mod.tree, {}, None, None, record=False)
            if not self.changed:
                break
        for mod in self.mods:
            self._visit(mod, mod.tree, {}, None, None, record=True)

    def _add(self, table: dict, key, services: set[str]) -> None:
        current = table.setdefault(key, set())
        if not services <= current:
            current |= services
            self.changed = True

    def _services(self, node: ast.AST | None, mod: _Module, cls: str | None, names: dict[str, set[str]]) -> set[str]:
        """The services of the client `node` evaluates to (empty: not a client)."""
        if isinstance(node, ast.Name):
            return names.get(node.id, set())
        if not isinstance(node, ast.Call):
            return set()
        func = node.func
        is_client = (isinstance(func, ast.Name) and func.id == "client") or (
            isinstance(func, ast.Attribute) and func.attr == "client")
        if is_client and (service := _literal(node.args[0] if node.args else None)):
            self.clients_made.add((mod.path, node.lineno))
            return {service}
        return self.factories.get(mod.qualified(func, cls), set())

    def _visit(self, mod: _Module, scope: ast.AST, outer: dict[str, set[str]], cls: str | None,
               qualified: str | None, record: bool) -> None:
        names = {k: set(v) for k, v in outer.items()}
        if isinstance(scope, Function):
            for param in _params(scope):
                names.pop(param, None)  # a parameter shadows the enclosing name
            for param, services in self.params.get(id(scope), {}).items():
                names.setdefault(param, set()).update(services)
        own, inner = _own_nodes(scope)
        for _ in range(2):  # `a = client(...)`, then `b = a`
            for node in own:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        pairs = (zip(target.elts, node.value.elts, strict=False)
                                 if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                                 else [(target, node.value)])
                        for t, v in pairs:
                            if isinstance(t, ast.Name) and (services := self._services(v, mod, cls, names)):
                                names.setdefault(t.id, set()).update(services)
        for node in own:
            if isinstance(node, ast.Return) and qualified and (services := self._services(node.value, mod, cls, names)):
                self._add(self.factories, qualified, services)
            if isinstance(node, ast.Call):
                self._call(mod, scope, node, names, cls, qualified, record)
        for fn, owner in inner:
            name = getattr(fn, "name", "<lambda>")
            if owner:  # a method
                prefix = qualified or mod.module
                self._visit(mod, fn, names, owner, f"{prefix}.{owner}.{name}", record)
            else:  # a nested function keeps the enclosing method's `self`
                self._visit(mod, fn, names, cls, f"{qualified or mod.module}.{name}", record)

    def _call(self, mod: _Module, scope: ast.AST, node: ast.Call, names: dict[str, set[str]], cls: str | None,
              qualified: str | None, record: bool) -> None:
        func = node.func
        # an operation called on a client
        if isinstance(func, ast.Attribute) and record:
            for service in sorted(self._services(func.value, mod, cls, names)):
                if func.attr in ("get_paginator", "get_waiter"):
                    if (name := _literal(node.args[0] if node.args else None)) is None:
                        self.unresolved.append(f"{mod.path}:{node.lineno} {ast.unparse(func)} of a computed name")
                    elif func.attr == "get_paginator":
                        self._record(mod, service, name, node, scope)
                    else:
                        self._record(mod, service, _xform(_waiter_operation(service, name), service), node, scope)
                elif func.attr not in NOT_OPERATIONS:
                    self._record(mod, service, func.attr, node, scope)
        # getattr(<client>, <parameter>): this function dispatches to the operation its caller names
        if (_name(func) == "getattr" and len(node.args) == 2 and isinstance(node.args[1], ast.Name)
                and isinstance(scope, Function) and qualified
                and (services := self._services(node.args[0], mod, cls, names))):
            params = _params(scope)
            if node.args[1].id in params:
                before = self.dispatchers.get(qualified)
                self.dispatchers[qualified] = (services, params.index(node.args[1].id))
                self.changed |= before != self.dispatchers[qualified]
            elif record:
                self.unresolved.append(f"{mod.path}:{node.lineno} getattr on a client with a computed name")
        target = mod.qualified(func, cls)
        if target in self.dispatchers and record:
            services, index = self.dispatchers[target]
            operation = _literal(node.args[index] if len(node.args) > index else None)
            for service in sorted(services):
                if operation:
                    self._record(mod, service, operation, node, scope)
                else:
                    self.unresolved.append(f"{mod.path}:{node.lineno} {target} with a computed operation")
        # a client passed to a function: its parameter is that client
        passed = [(i, a) for i, a in enumerate(node.args)] + [(k.arg, k.value) for k in node.keywords]
        for position, arg in passed:
            services = self._services(arg, mod, cls, names)
            if not services or _name(func) == "getattr":
                continue
            callee = self.functions.get(target)
            if callee is None:
                if record:
                    self.unresolved.append(f"{mod.path}:{node.lineno} a {'/'.join(sorted(services))} client "
                                           f"passed to {ast.unparse(func)}")
                continue
            params = _params(callee)
            if isinstance(position, int):
                offset = 1 if _name(func).split(".")[0] in ("self", "cls") else 0
                param = params[position + offset] if position + offset < len(params) else None
            else:
                param = position
            if param:
                self._add(self.params.setdefault(id(callee), {}), param, services)

    def _record(self, mod: _Module, service: str, operation: str, node: ast.Call, scope: ast.AST) -> None:
        self.calls.append(Call(mod.path, node.lineno, service, operation, _actions(service, operation, node, scope)))


@cache
def _model(service: str):
    import boto3

    return boto3.session.Session().client(service, region_name="us-east-1", aws_access_key_id="x",
                                          aws_secret_access_key="x")


def _operations(service: str) -> dict[str, str]:
    """boto3 method -> API operation name (PascalCase), from botocore's model of the service."""
    return dict(_model(service).meta.method_to_api_mapping)


def _iam_prefix(service: str) -> str:
    """The service's IAM prefix: botocore's signing name (dynamodbstreams signs as dynamodb)."""
    return _model(service).meta.service_model.signing_name


def _waiter_operation(service: str, waiter: str) -> str:
    return _model(service).get_waiter(waiter).config.operation


def _xform(api_name: str, service: str) -> str:
    return next((method for method, api in _operations(service).items() if api == api_name), api_name)


def _actions(service: str, operation: str, call: ast.Call, enclosing: ast.AST) -> tuple[str, ...]:
    if (service, operation) in ACTION_OVERRIDES:
        return ACTION_OVERRIDES[(service, operation)]
    if (service, operation) == ("s3", "generate_presigned_url"):
        method = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "ClientMethod"), None)
        if _literal(method):
            return _actions(service, method.value, call, enclosing)
        return (f"s3:? (generate_presigned_url of {ast.unparse(method) if method else '?'})",)
    if (service, operation) == ("dynamodb", "transact_write_items"):
        kinds = {TRANSACT_ITEMS[key.value] for node in ast.walk(enclosing) if isinstance(node, ast.Dict)
                 for key in node.keys if isinstance(key, ast.Constant) and key.value in TRANSACT_ITEMS}
        return tuple(sorted(kinds)) or ("dynamodb:? (transact_write_items with unknown items)",)
    api = _operations(service).get(operation)
    if api is None:
        return (f"{_iam_prefix(service)}:? (no operation {operation})",)
    return (f"{_iam_prefix(service)}:{api}",)


def scan(roots: list[str]) -> Scan:
    """Follow the imports from `roots` (module names) and collect every boto3 call.

    A module that is only the parent package of an imported one (`taskapp` of `taskapp.store`)
    runs only its top-level code: its lazy imports (inside `create_app`) are not followed and its
    functions' calls do not count, unless the module is itself imported somewhere."""
    result = Scan()
    used: set[str] = set()
    parents: set[str] = set()
    todo = [(root, True) for root in roots]
    while todo:
        module, explicit = todo.pop()
        if not module_path(module) or module in used or (module in parents and not explicit):
            continue
        if explicit:
            used.add(module)
            parents.discard(module)
        else:
            parents.add(module)
        todo += [(parent, False) for parent in _with_parents(module)[:-1]]
        found, unresolved = imports_of(module, top_level_only=not explicit)
        result.unresolved += unresolved
        for imported, names in found.items():
            if _never_in_lambda(imported):
                result.skipped_imports.add((module, imported, names))
            else:
                todo.append((imported, True))
    result.modules = used | parents
    analysis = _Analysis(used)
    analysis.run()
    result.calls = sorted(set(analysis.calls))
    result.unresolved += analysis.unresolved
    result.clients_made = analysis.clients_made
    for module in sorted(parents):  # calls in a parent's top-level code (there are none today)
        mod = _Module(module)
        own, _ = _own_nodes(mod.tree)
        if any(isinstance(n, ast.Call) and _name(n.func).endswith("client") for n in own):
            result.unresolved.append(f"{mod.path}: a client made at module level of a parent package")
    return result


# --- the functions --------------------------------------------------------------------------------


def function_roots(app: str) -> list[str]:
    """The modules Lambda loads for the function `app`: its app_function's and its event handlers'."""
    from shared.tools.deploy.stages import local_stages

    stage = local_stages()[app]
    functions = [stage["app_function"], *(event["function"] for event in stage.get("events") or [])]
    return sorted({function.rsplit(".", 1)[0] for function in functions})


@cache
def scan_function(app: str) -> Scan:
    return scan(function_roots(app))


def main(argv: list[str]) -> int:
    from shared.tools.deploy.stages import local_stages

    for app in argv or list(local_stages()):
        result = scan_function(app)
        print(f"== {app}: roots {', '.join(function_roots(app))}; {len(result.modules)} modules, "
              f"{len(result.calls)} call sites, {len(result.actions())} actions")
        for call in sorted(result.calls):
            print(f"   {call}")
        for item in result.unresolved:
            print(f"   unresolved: {item}")
        for importer, skipped, names in sorted(result.skipped_imports):
            print(f"   not followed: {importer} imports {', '.join(names) or 'the module'} from {skipped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

# Postern's tasks. The two a newcomer needs:
#   make run    install what is missing, build, open the app (on the local sandbox when no AWS profile exists)
#   make test   install what is missing, start every service the tests need, run every check CI runs
# The rest: make help.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The Tauri CLI (ui/'s devDependencies), for bundles: $(TAURI) build --bundles deb.
TAURI := ui/node_modules/.bin/tauri
TAURI_DRIVER := $(CURDIR)/target/tools/bin/tauri-driver
DESKTOP_BIN := target/debug/postern-desktop
XVFB := xvfb-run -a -s "-screen 0 1280x800x24"
# The tauri CLI rejects CI=1 (it wants true/false); pass it a value it accepts.
TAURI_ENV := CI=true
# The desktop app with ui/dist embedded (the custom protocol, as `tauri build` makes it) and
# postern-sandbox beside it, built over the whole workspace (one feature set for every build).
DESKTOP_BUILD := cargo build --workspace --bins --locked --features postern-desktop/custom-protocol

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# ---------------------------------------------------------------------------------------------
# Set-up

.PHONY: deps
deps: ## Install missing apt packages, node modules, the Python venv and tauri-driver
	.ci/deps

# `generate_context!` embeds ui/dist, so it must exist before any cargo build, check or clippy.
.PHONY: ui
ui: ## Build the front end into ui/dist
	.ci/deps ui
	npm --prefix ui run build --silent

# ---------------------------------------------------------------------------------------------
# Running

.PHONY: run
run: deps ui ## Build and open the desktop app (it offers the local sandbox when no AWS profile exists)
	$(DESKTOP_BUILD)
	.ci/run-app

# Quiet (@, cargo -q): what it prints on stdout is for `eval`.
.PHONY: sandbox
sandbox: ## Build postern and the sandbox, start the sandbox in the background: eval "$(make sandbox)"
	@cargo build -q --locked -p postern-cli --bin postern -p postern-sandbox --bin postern-sandbox
	@printf "export PATH='%s':\"\$$PATH\"\n" "$(CURDIR)/target/debug"
	@target/debug/postern-sandbox serve --background

.PHONY: install
install: ## Install postern and postern-sandbox (release builds) into ~/.cargo/bin
	cargo install --locked --path crates/postern-cli
	cargo install --locked --path crates/postern-sandbox

# ---------------------------------------------------------------------------------------------
# Checks

.PHONY: test
test: deps ui fmt-check clippy ssm-purity test-rust test-peers test-ui test-desktop ## Everything CI runs
	@echo "make test: all checks passed"

.PHONY: fmt
fmt: ## Format the Rust code
	cargo fmt --all

.PHONY: fmt-check
fmt-check:
	cargo fmt --all --check

.PHONY: clippy
clippy: ui ## Lint the Rust code, warnings are errors
	cargo clippy --workspace --all-targets --locked -- -D warnings

# postern-ssm is sans-IO: no async runtime, websocket or AWS crate may reach it.
.PHONY: ssm-purity
ssm-purity:
	@tree=$$(cargo tree -p postern-ssm -e normal --prefix none --locked) || exit 1; \
	test -n "$$tree" || { echo "cargo tree printed nothing for postern-ssm" >&2; exit 1; }; \
	if printf '%s\n' "$$tree" | grep -E '^(tokio|mio|async-|smol|futures|tungstenite|tokio-tungstenite|fastwebsockets|websocket|hyper|reqwest|ureq|rustls|aws-)'; then \
	  echo "postern-ssm must not depend on the crates above (it is sans-IO)" >&2; exit 1; fi
	@echo "postern-ssm is sans-IO"

# The e2e journeys run the workspace's binaries, so build them first. Everything runs with a
# real Secret Service (a private D-Bus session with an unlocked gnome-keyring) for the keychain.
# The pinned cargo-nextest (`.ci/deps tools` installs it) runs them, the same on every machine.
.PHONY: test-rust
test-rust: ui
	.ci/deps tools
	cargo build --workspace --bins --locked
	.ci/with-keychain "$$(.ci/deps nextest)" nextest run --no-fail-fast --workspace --locked

# Independent clients against the sandbox: the AWS CLI v1 and boto3 (raw responses checked
# against the botocore models), and the STS/EC2 happy paths on moto as well; botocore reading
# the same AWS config files as `postern`. Needs the binaries (built for the whole workspace, as
# test-rust builds them: a narrower build would unify other features and compile the AWS SDK again).
.PHONY: test-peers
test-peers: ## AWS CLI, boto3, moto and botocore's config reader against the sandbox and postern
	.ci/deps venv
	cargo build -q --workspace --bins --locked
	.venv/bin/python -m unittest discover -s tests/peers -p 'test_*.py' -v

# The window's IPC types in TypeScript, generated from the Rust ones (src-tauri/src/ipc.rs);
# the `bindings` test of `make test` fails when ui/src/ipc/bindings.ts is not what this writes.
.PHONY: bindings
# It needs no built UI (the UI's own build type-checks against these bindings): an empty ui/dist
# is enough for generate_context!.
bindings: ## Rewrite ui/src/ipc/bindings.ts from the Rust types
	mkdir -p ui/dist
	POSTERN_WRITE_BINDINGS=1 cargo test --locked -p postern-desktop --lib bindings

.PHONY: test-ui
test-ui: ## Type-check the UI and run its unit tests
	npm --prefix ui run typecheck --silent
	npm --prefix ui test --silent

# The real window under Xvfb, driven through tauri-driver + WebKitWebDriver; screenshots land in
# target/screenshots/. The app is built as `tauri build --debug --no-bundle` builds it (ui/dist
# embedded, served over the custom protocol, as users get it), but by cargo over the whole
# workspace: a build of the desktop package alone would unify other features and compile the
# AWS SDK a second time. It starts postern-sandbox from its own folder (target/debug).
.PHONY: test-desktop
test-desktop: ui ## WebDriver tests of the desktop window under Xvfb
	.ci/deps tools
	$(DESKTOP_BUILD)
	TAURI_DRIVER=$(TAURI_DRIVER) $(XVFB) tests/webdriver/run.sh $(DESKTOP_BIN)

# ---------------------------------------------------------------------------------------------
# Long checks, kept out of `make test`

.PHONY: bench
bench: ui ## Benchmarks (release build), printed as ratios against baselines measured in the same run
	.ci/deps venv
	cargo build --release --locked -p postern-cli --bin postern
	.ci/with-keychain cargo bench --locked -p postern-e2e --bench postern

# The tunnel checks at 64 MiB per connection (POSTERN_SOAK_MIB=N), and a tunnel left idle for an
# hour (POSTERN_SOAK_IDLE_SECS=N) that must still carry the next connection.
.PHONY: soak
soak: ui ## Long-running checks (64 MiB tunnels in both port modes and under faults, an idle hour)
	cargo build --workspace --bins --locked
	.ci/with-keychain cargo test --locked -p postern-e2e --test e2e soak_ -- --ignored --nocapture --test-threads=1

# The Rust tests RUNS times (default 20), two runs at a time, with stress-ng keeping the CPUs
# busy: how often each test failed. One failure is a bug to find, never a reason to retry.
.PHONY: stress
RUNS ?= 20
stress: ui ## Run the Rust tests RUNS times, two at a time, on busy CPUs, and count failures
	.ci/deps tools stress
	cargo build --workspace --bins --locked
	.ci/stress $(RUNS)

.PHONY: fuzz
FUZZ_CASES ?= 300000
fuzz: ## Long randomized runs of the parsers that face the network (FUZZ_CASES=N)
	POSTERN_FUZZ_CASES=$(FUZZ_CASES) cargo test -p postern-sandbox --test sandbox --locked router_fuzz -- --nocapture
	POSTERN_FUZZ_CASES=$$(( $(FUZZ_CASES) * 10 )) cargo test -p postern-ssm --test ssm --locked _survives_ -- --nocapture

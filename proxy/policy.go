package proxy

import (
	"net/http"

	"github.com/cassetteproxy/cassetteproxy/match"
)

// Mode is match.Mode, one type for --mode, a rule's mode:, a fixture's
// mode and a run record's: parsed by match.ParseMode alone.
type Mode = match.Mode

const (
	ModeRecord = match.ModeRecord
	ModeReplay = match.ModeReplay
	ModeStrict = match.ModeStrict
	ModeLive   = match.ModeLive
)

// ParseMode is match.ParseMode.
func ParseMode(s string) (Mode, error) { return match.ParseMode(s) }

// Situation is what the proxy knows about a request (or a CONNECT) when it
// decides what to do with it.
type Situation uint8

const (
	// Hit: recorded, and a recorded answer is left to serve.
	Hit Situation = iota
	// HitExhausted: recorded, but every recorded answer was already served
	// (the request came more often than it was recorded).
	HitExhausted
	// HitIncompleteBlock: recorded cut short (the upstream or the client
	// broke it), with the rules file's incomplete: block.
	HitIncompleteBlock
	// HitExpired: recorded longer ago than --max-recording-age, with
	// --expired warn (the default).
	HitExpired
	// HitExpiredBlock: the same, with --expired block.
	HitExpiredBlock
	// HitNotKept: recorded, but its response body was not kept (over
	// --max-body when recorded, or the rules file's store: hash or fields;
	// see bodyNotRecorded).
	HitNotKept
	// MissSafe: never recorded; GET, HEAD, OPTIONS, or a JSON-RPC read
	// (see toolHints).
	MissSafe
	// MissMutating: never recorded; any other request.
	MissMutating
	// HostNotAllowed: a request or CONNECT to a host outside --allow-host
	// (and the rules file's allow_hosts), when there is such a list.
	HostNotAllowed
	// HostUnknown: a CONNECT to a host the cassette never saw.
	HostUnknown
	// WebSocket: a WebSocket upgrade.
	WebSocket
	// Upgrade: any other protocol upgrade.
	Upgrade

	numSituations
)

var situationNames = [numSituations]string{
	Hit: "hit", HitExhausted: "exhausted hit", HitIncompleteBlock: "hit cut short (incomplete: block)", HitExpired: "expired hit (--expired warn)",
	HitExpiredBlock: "expired hit (--expired block)", HitNotKept: "hit whose body was not kept",
	MissSafe: "safe miss", MissMutating: "mutating miss", HostNotAllowed: "host not allowed",
	HostUnknown: "CONNECT to a host never recorded", WebSocket: "WebSocket", Upgrade: "other upgrade",
}

func (s Situation) String() string { return situationNames[s] }

// Action is what the proxy does in a situation.
type Action uint8

const (
	// Pass: nothing to decide here (a CONNECT goes on to be intercepted).
	Pass Action = iota
	// Replay: answer from the cassette. A WebSocket plays the recorded
	// server, message by message.
	Replay
	// ReplayExpired: Replay, with the X-Cassetteproxy-Expired header and a
	// warning in the log.
	ReplayExpired
	// Record: forward upstream and record the answer. An upgrade is
	// tunnelled, a WebSocket's messages recorded.
	Record
	// RecordAdd: Record, and add the answer to what is replayed: the next
	// identical request is answered from it.
	RecordAdd
	// Block: answer with a blocked answer naming Reason, never upstream.
	Block
)

// Rule is one cell of the policy table.
type Rule struct {
	Action Action
	Reason string // Block: the reason (X-Cassetteproxy-Blocked, the run record)
	// FailsRun: Block: a run with such a block fails with that reason's
	// class, whatever its command did next (see Policy.FailsRun).
	FailsRun bool
}

// Policy is one mode's row of the table.
type Policy struct {
	Mode Mode
	On   [numSituations]Rule
	// Dials: an upstream transport that can dial exists. Without it (replay,
	// strict) no code path can open an outbound connection.
	Dials bool
	// BlockFailsRun: any blocked request fails the run (runner.ProxyCheck);
	// in the other modes a block fails it only by its cell's FailsRun, or
	// makes a run that failed anyway "blocked".
	BlockFailsRun bool
}

var (
	record = Rule{Action: Record}
	replay = Rule{Action: Replay}
	pass   = Rule{Action: Pass}
	// Both fail a run in every mode: nothing was sent to the host, and
	// answers too old to trust judged nothing.
	notAllowed   = Rule{Action: Block, Reason: ReasonHostNotAllowed, FailsRun: true}
	expiredBlock = Rule{Action: Block, Reason: ReasonExpired, FailsRun: true}
)

func block(reason string) Rule { return Rule{Action: Block, Reason: reason} }

// policies is the mode policy, whole: what every mode does in every
// situation. handle, the CONNECT handler, the upstream transport, the
// runner's verdict and the documentation (docs/internals.md, README
// "Modes") follow it; TestPolicyTable walks it with real requests.
//
// Reading it: strict mode, a POST repeated to a host the cassette never
// saw. Over HTTPS its CONNECT is HostUnknown: blocked host_not_recorded.
// Over plain HTTP each POST is a MissMutating: blocked mutation_blocked,
// every time (nothing is recorded, so a repeat is a miss again). Strict
// has BlockFailsRun, so either way the run fails.
var policies = [...]Policy{
	{Mode: ModeRecord, Dials: true, On: [numSituations]Rule{
		Hit: record, HitExhausted: record, HitIncompleteBlock: record, HitExpired: record, HitExpiredBlock: record, HitNotKept: record,
		MissSafe: record, MissMutating: record,
		HostNotAllowed: notAllowed, HostUnknown: pass, WebSocket: record, Upgrade: record,
	}},
	{Mode: ModeReplay, On: [numSituations]Rule{
		Hit: replay, HitExhausted: replay, HitIncompleteBlock: replay, HitExpired: {Action: ReplayExpired}, HitExpiredBlock: expiredBlock,
		HitNotKept: block(ReasonBodyNotRecorded),
		MissSafe:   block(ReasonUnrecorded), MissMutating: block(ReasonMutation),
		HostNotAllowed: notAllowed, HostUnknown: pass, WebSocket: replay, Upgrade: block(ReasonUpgrade),
	}},
	{Mode: ModeStrict, BlockFailsRun: true, On: [numSituations]Rule{
		Hit: replay, HitExhausted: block(ReasonExhausted), HitIncompleteBlock: block(ReasonIncomplete), HitExpired: {Action: ReplayExpired}, HitExpiredBlock: expiredBlock,
		HitNotKept: block(ReasonBodyNotRecorded),
		MissSafe:   block(ReasonUnrecorded), MissMutating: block(ReasonMutation),
		HostNotAllowed: notAllowed, HostUnknown: block(ReasonHostNotRecorded), WebSocket: replay, Upgrade: block(ReasonUpgrade),
	}},
	{Mode: ModeLive, Dials: true, On: [numSituations]Rule{
		Hit: replay, HitExhausted: replay, HitIncompleteBlock: replay, HitExpired: {Action: ReplayExpired}, HitExpiredBlock: expiredBlock,
		HitNotKept: block(ReasonBodyNotRecorded),
		MissSafe:   {Action: RecordAdd}, MissMutating: block(ReasonMutation),
		HostNotAllowed: notAllowed, HostUnknown: pass, WebSocket: replay, Upgrade: block(ReasonUpgrade),
	}},
}

// PolicyFor is mode's row. A mode that was never set (a run record
// without a proxy) gets replay's; New refuses to serve one.
func PolicyFor(m Mode) *Policy {
	switch m {
	case ModeRecord:
		return &policies[0]
	case ModeStrict:
		return &policies[2]
	case ModeLive:
		return &policies[3]
	}
	return &policies[1]
}

// upgradeSituation is the Situation of an upgrade request: WebSocket or
// another protocol.
func upgradeSituation(h http.Header) Situation {
	if isWebSocket(h) {
		return WebSocket
	}
	return Upgrade
}

// consults reports whether the mode looks requests up in the cassette at
// all: record forwards whatever it finds, so it never does.
func (p *Policy) consults() bool {
	for s := Hit; s <= MissMutating; s++ {
		if p.On[s].Action != Record {
			return true
		}
	}
	return false
}

// Serves reports whether some request may be answered from the cassette.
func (p *Policy) Serves() bool {
	for _, r := range p.On {
		if r.Action == Replay || r.Action == ReplayExpired {
			return true
		}
	}
	return false
}

// FailsRun reports whether a request blocked with reason fails the run by
// itself in this mode.
func (p *Policy) FailsRun(reason string) bool {
	if p.BlockFailsRun {
		return true
	}
	for _, r := range p.On {
		if r.Action == Block && r.Reason == reason && r.FailsRun {
			return true
		}
	}
	return false
}

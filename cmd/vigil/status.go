package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// adminFlags are the flags of every command that talks to a coordinator's Admin API.
type adminFlags struct {
	operator, addr, coordinatorID string
	timeout                       time.Duration
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.operator, "operator", "", "`directory` with the operator's credentials, from vigil pki operator (required)")
	fs.StringVar(&a.addr, "coordinator", "127.0.0.1:7072", "the coordinator's --admin-listen address")
	fs.StringVar(&a.coordinatorID, "coordinator-id", "coordinator", "the coordinator's identity in its certificate")
	a.timeout = 10 * time.Second
	fs.Var(durationFlag{&a.timeout}, "timeout", "how long to wait for the coordinator, e.g. 10s")
}

// dial connects to the Admin API with the operator's certificate, checking that the server is
// the coordinator of the operator's CA.
func (a *adminFlags) dial(cmd string) (vigilv1.AdminClient, func(), error) {
	if a.operator == "" {
		return nil, nil, fmt.Errorf("%s: --operator is required (make the credentials with `vigil pki operator --dir ORG/pki --id NAME --out DIR`)", cmd)
	}
	creds, err := pki.LoadCredentials(a.operator)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: --operator: %w", cmd, err)
	}
	if _, err := creds.Verify(time.Now()); err != nil {
		return nil, nil, fmt.Errorf("%s: --operator %s: %w", cmd, a.operator, err)
	}
	cert := creds.TLSCertificate()
	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(&cert, creds.RootPool(), pki.Coordinator(a.coordinatorID)))),
		grpc.WithUnaryInterceptor(wrongPortHint))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: --coordinator %s: %w", cmd, a.addr, err)
	}
	return vigilv1.NewAdminClient(conn), func() { conn.Close() }, nil
}

// wrongPortHint says what a WRONG_ROLE refusal of an operator's call most likely means: the
// address is the coordinator's port for devices (or a frontend's), not its --admin-listen.
func wrongPortHint(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if vigilv1.Reason(err) == pki.ReasonWrongRole {
		return fmt.Errorf("%w (is --coordinator the coordinator's --admin-listen address? The port devices use refuses operators)", err)
	}
	return err
}

// runStatus is `vigil status`: the coordinator's run as text or JSON.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newCmdFlags("status", "vigil status --operator DIR [--coordinator ADDR] [--json]",
		"Show a running coordinator: rounds, devices (enrolled, removed, last seen, missing from the open\nround), trustees, release regions and the privacy budget.", stdout)
	var a adminFlags
	a.register(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print the status as JSON (protojson of vigil.v1.StatusResponse)")
	if err := parseCmdFlags(fs, args); err != nil {
		return err
	}
	api, closeConn, err := a.dial("status")
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	st, err := api.Status(ctx, &vigilv1.StatusRequest{})
	if err != nil {
		return fmt.Errorf("status: --coordinator %s: %w", a.addr, err)
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printStatus(stdout, st, time.Now())
}

// printStatus writes st for a person.
func printStatus(w io.Writer, st *vigilv1.StatusResponse, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ago := func(t time.Time) string {
		d := now.Sub(t).Round(time.Second)
		if d < 0 {
			return "in " + (-d).String()
		}
		return d.String() + " ago"
	}
	clock := func(t time.Time) string { return t.Local().Format("15:04:05") }
	fmt.Fprintf(tw, "model\t%s v%d\t(coordinator %s)\n", st.GetModel(), st.GetGlobalVersion(), st.GetVersion())
	state := "running"
	if st.GetPaused() {
		state = "PAUSED (vigil admin resume)"
	}
	line := fmt.Sprintf("%s; %d completed since start; last started %d", state, st.GetCompletedRounds(), st.GetLastRoundStarted())
	if nb := st.GetNextRoundNotBefore(); nb != nil && nb.AsTime().After(now) {
		line += fmt.Sprintf("; next not before %s (%s)", clock(nb.AsTime()), ago(nb.AsTime()))
	}
	fmt.Fprintf(tw, "rounds\t%s\n", line)
	if o := st.GetOpenRound(); o != nil {
		line := fmt.Sprintf("%d: %d of %d sampled devices answered, deadline %s (%s)", o.GetRound(), o.GetSubmitted(), o.GetSelected(),
			clock(o.GetDeadline().AsTime()), ago(o.GetDeadline().AsTime()))
		if o.GetClosing() {
			line += ", closing"
		}
		if len(o.GetMissing()) > 0 {
			line += "; missing: " + strings.Join(o.GetMissing(), ", ")
		}
		fmt.Fprintf(tw, "open round\t%s\n", line)
	} else {
		fmt.Fprintf(tw, "open round\tnone\n")
	}
	if l := st.GetLastRound(); l != nil {
		line := fmt.Sprintf("%d %s at %s (%s), %d of %d sampled, took %s", l.GetRound(), l.GetOutcome(), clock(l.GetEnded().AsTime()),
			ago(l.GetEnded().AsTime()), l.GetParticipants(), l.GetSelected(), time.Duration(l.GetDurationSeconds()*float64(time.Second)).Round(time.Millisecond))
		if l.GetVersion() != 0 {
			line += fmt.Sprintf(", released v%d", l.GetVersion())
		}
		if l.GetReason() != "" {
			line += ": " + l.GetReason()
		}
		fmt.Fprintf(tw, "last round\t%s\n", line)
	}
	if p := st.GetPrivacy(); p.GetDifferentialPrivacy() {
		fmt.Fprintf(tw, "privacy\tepsilon %.3f of %g spent, %.3f left, at delta %g\n", p.GetEpsilonSpent(), p.GetEpsilonBudget(), p.GetEpsilonRemaining(), p.GetDelta())
	} else {
		fmt.Fprintf(tw, "privacy\tOFF (--insecure-no-dp)\n")
	}
	fmt.Fprintf(tw, "devices\t%d enrolled, %d removed, %d enrolling (no first call yet)\n", len(st.GetDevices()), len(st.GetRemoved()), st.GetPendingEnrolments())
	fmt.Fprintf(tw, "running\t%s\n", installedSummary(st))
	for _, d := range st.GetDevices() {
		seen := "not seen since the coordinator started"
		if d.GetLastSeen() != nil {
			seen = "last seen " + ago(d.GetLastSeen().AsTime())
		}
		runs := "runs nothing reported"
		if inst := d.GetInstalled(); len(inst) > 0 {
			var parts []string
			for _, m := range slices.Sorted(maps.Keys(inst)) {
				parts = append(parts, fmt.Sprintf("%s v%d", m, inst[m]))
			}
			runs = "runs " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\tenrolled %s\t%s\t%s\n", d.GetId(), d.GetRegion(), d.GetEnrolled().AsTime().Local().Format(time.DateTime), seen, runs)
	}
	for _, d := range st.GetRemoved() {
		fmt.Fprintf(tw, "  %s\tREMOVED\t%s\t%s\n", d.GetId(), d.GetRemoved().AsTime().Local().Format(time.DateTime), d.GetReason())
	}
	fmt.Fprintf(tw, "trustees\t%d at the last check\n", len(st.GetTrustees()))
	for _, t := range st.GetTrustees() {
		health := "ok"
		switch {
		case !t.GetReachable():
			health = "DOWN: " + t.GetProblem()
		case t.GetProblem() != "":
			health = "UNFIT: " + t.GetProblem()
		}
		fmt.Fprintf(tw, "  %s\t%s\thad decrypted up to round %d when checked\t%s\n", t.GetId(), health, t.GetLastRound(),
			time.Duration(t.GetLatencySeconds()*float64(time.Second)).Round(100*time.Microsecond))
	}
	fmt.Fprintf(tw, "regions\t%d\n", len(st.GetRegions()))
	for _, r := range st.GetRegions() {
		line := fmt.Sprintf("  %s\tv%d", r.GetName(), r.GetPublishedVersion())
		if r.GetLastSuccess() != nil {
			line += "\tlast published " + ago(r.GetLastSuccess().AsTime())
		}
		if r.GetFailures() > 0 {
			line += fmt.Sprintf("\tFAILING (%d in a row): %s", r.GetFailures(), r.GetLastError())
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// runAdmin is `vigil admin`: the operator's controls of a running coordinator.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []command{
		{"pause", "stop new rounds from starting (the open round runs to its end); survives restarts", nil},
		{"resume", "lift a pause: rounds start again as --round-interval and the failure back-off allow (not paused: nothing changes)", nil},
		{"abort", "fail the open round now; nothing is released, and the round is charged to the privacy budget unless every device was asked (`vigil status` says which)", nil},
		{"remove-device", "take a device out of the registry and revoke it (--device-id D)", nil},
	}
	if len(args) == 0 || isHelp(args[0]) {
		printSubcommands(stdout, "vigil admin <command> --operator DIR [--coordinator ADDR]", subs)
		if len(args) == 0 {
			return usageError{errors.New("admin: no command given")}
		}
		return nil
	}
	name := args[0]
	fs := newCmdFlags("admin "+name, "vigil admin "+name+" --operator DIR [--coordinator ADDR]", "", stdout)
	var a adminFlags
	a.register(fs.FlagSet)
	var device, reason *string
	switch name {
	case "pause", "resume":
	case "abort":
		reason = fs.String("reason", "", "why, for the log and the status")
	case "remove-device":
		device = fs.String("device-id", "", "the device to remove (required)")
		reason = fs.String("reason", "", "why, for the log and the status")
	default:
		printSubcommands(stderr, "vigil admin <command> --operator DIR [--coordinator ADDR]", subs)
		return usageError{fmt.Errorf("admin: unknown command %q", name)}
	}
	if err := parseCmdFlags(fs, args[1:]); err != nil {
		return err
	}
	if device != nil && *device == "" {
		return usageError{errors.New("admin remove-device: --device-id is required")}
	}
	api, closeConn, err := a.dial("admin " + name)
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	switch name {
	case "pause":
		_, err = api.PauseRounds(ctx, &vigilv1.PauseRoundsRequest{})
		if err == nil {
			fmt.Fprintln(stdout, "rounds paused; the open round, if any, runs to its end")
		}
	case "resume":
		_, err = api.ResumeRounds(ctx, &vigilv1.ResumeRoundsRequest{})
		if err == nil {
			fmt.Fprintln(stdout, "rounds resumed")
		}
	case "abort":
		var r *vigilv1.AbortRoundResponse
		r, err = api.AbortRound(ctx, &vigilv1.AbortRoundRequest{Reason: *reason})
		if err == nil {
			fmt.Fprintf(stdout, "round %d aborted; nothing released (`vigil status` says whether it was charged to the privacy budget)\n", r.GetRound())
		}
	case "remove-device":
		_, err = api.RemoveDevice(ctx, &vigilv1.RemoveDeviceRequest{DeviceId: *device, Reason: *reason})
		if err == nil {
			fmt.Fprintf(stdout, "device %s removed and revoked\n", *device)
		}
	}
	if err != nil {
		return fmt.Errorf("admin %s: --coordinator %s: %w", name, a.addr, err)
	}
	return nil
}

// runPKIOperator is `vigil pki operator`: an operator's key and client certificate, which the
// coordinator's Admin API admits (and nothing else does).
func runPKIOperator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := pkiFlagSet("operator", stdout)
	id := fs.String("id", "", "the operator's name, e.g. alice (required)")
	out := fs.String("out", "", "directory to write key.pem, cert.pem and ca.pem to (default DIR/../operators/ID)")
	validity := 90 * 24 * time.Hour
	fs.Var(durationFlag{&validity}, "validity", "how long the certificate is valid, e.g. 2160h")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{errors.New("pki operator: --id is required")}
	}
	auth, err := pki.OpenAuthority(*dir)
	if err != nil {
		return fmt.Errorf("pki operator: --dir: %w", err)
	}
	creds, err := auth.IssueCredentials(pki.Operator(*id), nil, validity, time.Now())
	if err != nil {
		return fmt.Errorf("pki operator: --id %s: %w", *id, err)
	}
	if *out == "" {
		*out = filepath.Join(*dir, "..", "operators", *id)
	}
	if _, err := os.Stat(filepath.Join(*out, "key.pem")); err == nil {
		// A new key would orphan the old certificate, still valid and unrevoked, wherever
		// it was copied to.
		return fmt.Errorf("pki operator: --out %s already holds an operator's key; refusing to overwrite it (revoke it with `vigil pki revoke`, then choose another --out or remove it)", *out)
	}
	if err := pki.SaveCredentials(*out, creds); err != nil {
		return fmt.Errorf("pki operator: --out: %w", err)
	}
	fmt.Fprintf(stdout, "operator %s: credentials in %s, valid until %s\nuse them with `vigil status --operator %s`\n",
		*id, *out, creds.Leaf().NotAfter.Format(time.RFC3339), *out)
	return nil
}

// installedSummary says which model versions the enrolled devices reported running, as
// "keystroke-ae v4: 12 devices, v3: 2; 1 device reported nothing".
func installedSummary(st *vigilv1.StatusResponse) string {
	var parts []string
	model := ""
	for _, n := range st.GetInstalled() {
		p := fmt.Sprintf("v%d: %d", n.GetVersion(), n.GetDevices())
		if n.GetModel() != model {
			model = n.GetModel()
			p = model + " " + p
		}
		parts = append(parts, p)
	}
	silent := 0
	for _, d := range st.GetDevices() {
		if len(d.GetInstalled()) == 0 {
			silent++
		}
	}
	if silent > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d of %d devices reported nothing since the coordinator started", silent, len(st.GetDevices())))
	}
	return strings.Join(parts, "; ")
}

package siem

// OCSFVersion is the version of the OCSF schema the events follow (metadata.version).
const OCSFVersion = "1.5.0"

// OCSF categories and classes the package emits. A class_uid is category_uid*1000 plus the
// class's number within its category; a type_uid is class_uid*100 plus the activity_id.
const (
	CategoryFindings = 2 // Findings
	CategoryIAM      = 3 // Identity & Access Management

	ClassDetectionFinding = 2004
	ClassAuthentication   = 3002
)

// Authentication activities (activity_id of class 3002).
const (
	AuthLogon  = 1  // a session was opened
	AuthLogoff = 2  // a session ended: closed, or revoked by the guard
	AuthOther  = 99 // Vigil's own activities: a continuous check, a challenge, analyst feedback
)

// Detection Finding activities (activity_id of class 2004).
const FindingCreate = 1

// Severities (severity_id).
const (
	SeverityInformational = 1
	SeverityLow           = 2
	SeverityMedium        = 3
	SeverityHigh          = 4
	SeverityCritical      = 5
)

// Statuses (status_id). Authentication uses Success, Failure and Other; a finding's status_id
// is its lifecycle, and a new finding is New (1).
const (
	StatusSuccess    = 1
	StatusFailure    = 2
	StatusOther      = 99
	FindingStatusNew = 1
)

// Event is one OCSF event as the package encodes it: the base event's attributes, then those
// of Authentication or of Detection Finding, then Vigil's own details under unmapped. Fields
// are in a fixed order, so the same entry always encodes to the same bytes.
type Event struct {
	ActivityID   int      `json:"activity_id"`
	ActivityName string   `json:"activity_name"`
	CategoryUID  int      `json:"category_uid"`
	CategoryName string   `json:"category_name"`
	ClassUID     int      `json:"class_uid"`
	ClassName    string   `json:"class_name"`
	TypeUID      int      `json:"type_uid"`
	TypeName     string   `json:"type_name"`
	SeverityID   int      `json:"severity_id"`
	Severity     string   `json:"severity"`
	StatusID     int      `json:"status_id"`
	Status       string   `json:"status"`
	StatusDetail string   `json:"status_detail,omitempty"`
	Time         int64    `json:"time"` // milliseconds since the Unix epoch (timestamp_t)
	Message      string   `json:"message"`
	Metadata     Metadata `json:"metadata"`

	// Authentication (3002).
	User    *User    `json:"user,omitempty"`
	Service *Service `json:"service,omitempty"`
	Session *Session `json:"session,omitempty"`
	IsMFA   *bool    `json:"is_mfa,omitempty"`

	// Detection Finding (2004).
	FindingInfo *FindingInfo `json:"finding_info,omitempty"`
	Resources   []Resource   `json:"resources,omitempty"`
	IsAlert     *bool        `json:"is_alert,omitempty"`
	RiskScore   *int         `json:"risk_score,omitempty"`

	Unmapped *Unmapped `json:"unmapped,omitempty"`
}

// Metadata is the OCSF metadata object.
type Metadata struct {
	Product        Product `json:"product"`
	Version        string  `json:"version"`                   // the OCSF schema version
	UID            string  `json:"uid"`                       // stable per entry: duplicates share it
	CorrelationUID string  `json:"correlation_uid,omitempty"` // the guarded session
	LogName        string  `json:"log_name"`
	Sequence       uint64  `json:"sequence,omitempty"` // the audit log record, when known
}

// Product is the OCSF product object: Vigil, and its version.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version"`
}

// User is the OCSF user object.
type User struct {
	Name   string `json:"name"`
	UID    string `json:"uid,omitempty"`
	TypeID int    `json:"type_id"` // 1 User, 0 Unknown (a decision for an unknown session)
}

// Service is the OCSF service object: the application whose sessions the guard watches.
type Service struct {
	Name string `json:"name"`
}

// Session is the OCSF session object.
type Session struct {
	UID string `json:"uid"`
}

// FindingInfo is the OCSF finding_info object.
type FindingInfo struct {
	UID   string   `json:"uid"`
	Title string   `json:"title"`
	Desc  string   `json:"desc,omitempty"`
	Types []string `json:"types,omitempty"`
}

// Resource is the OCSF resource_details object: the resource a denied caller asked for.
type Resource struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Unmapped carries what OCSF has no attribute for, under the vendor's name.
type Unmapped struct {
	Vigil Details `json:"vigil"`
}

// Details are the guard's own words for an entry.
type Details struct {
	Kind      string   `json:"kind"`              // decision, session or gap
	Outcome   string   `json:"outcome,omitempty"` // a decision's outcome
	Event     string   `json:"event,omitempty"`   // a session event's name
	Tier      string   `json:"tier,omitempty"`
	From      string   `json:"from,omitempty"`
	To        string   `json:"to,omitempty"`
	Trust     *float64 `json:"trust,omitempty"`
	Required  float64  `json:"required,omitempty"`
	Challenge uint64   `json:"challenge,omitempty"`
	Dropped   uint64   `json:"dropped,omitempty"` // a gap's lost events
	Host      string   `json:"host,omitempty"`
	Reasons   []Reason `json:"reasons,omitempty"`
}

// Reason is one signal behind a decision, as the audit log records it.
type Reason struct {
	Signal string  `json:"signal"`
	Impact float64 `json:"impact"`
	Text   string  `json:"text"`
}

// captions of the enumerations the package uses.
func severityName(id int) string {
	switch id {
	case SeverityInformational:
		return "Informational"
	case SeverityLow:
		return "Low"
	case SeverityMedium:
		return "Medium"
	case SeverityHigh:
		return "High"
	case SeverityCritical:
		return "Critical"
	}
	return "Unknown"
}

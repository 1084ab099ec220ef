package mesh

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/outcome"
)

// Load reads bundle files; a directory contributes its *.yaml and *.yml
// files, in its subdirectories too, in path order. All documents form one
// Mesh, validated as a whole.
func Load(paths ...string) (*Mesh, error) {
	if len(paths) == 0 {
		return nil, errors.New("mesh: no bundle files given")
	}
	l := newLoader()
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("mesh: read bundle: %w", err)
		}
		files := []string{p}
		if st.IsDir() {
			if files, err = yamlFiles(p); err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("mesh: read bundle: %w", err)
			}
			l.parseFile(f, data)
		}
	}
	return l.finish()
}

// Parse loads one file's content; file names it in errors.
func Parse(file string, data []byte) (*Mesh, error) {
	l := newLoader()
	l.parseFile(file, data)
	return l.finish()
}

// Problem is one thing wrong with the input.
type Problem struct {
	Source  Source
	Kind    string
	Name    string // namespace/name
	Field   string // JSON path, e.g. spec.trafficPolicy.tls.mode
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Source.File != "" {
		b.WriteString(p.Source.String())
	}
	if p.Kind != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.Kind)
		if p.Name != "" {
			b.WriteString(" " + p.Name)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a bundle.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

type loader struct {
	m     *Mesh
	probs []Problem
	// targets keeps each given Service's targetPorts until workloads are known.
	targets map[*Service][]intstr.IntOrString
	// broken holds "Kind/ns/name" of objects that failed to decode.
	broken map[string]bool
	// pods are Kubernetes pods and pod templates, made Workloads in finish.
	pods []*kubePods
	// endpoints are Endpoints and EndpointSlices, resolved in finish.
	endpoints []*endpointsDoc
	// configOnly refuses documents that are not config (WithConfig);
	// skipChecks leaves Check documents out.
	configOnly, skipChecks bool
}

func newLoader() *loader {
	return &loader{m: &Mesh{Sources: map[string]Source{}, docs: []document{}}, targets: map[*Service][]intstr.IntOrString{}, broken: map[string]bool{}}
}

func (l *loader) add(src Source, kind, name, field, msg string) {
	l.probs = append(l.probs, Problem{Source: src, Kind: kind, Name: name, Field: field, Message: msg})
}

var docSep = regexp.MustCompile(`^---(\s.*)?$`)

// splitDocs splits on "---" lines. Documents with only whitespace and
// comments are dropped; the rest are numbered from 0 in order.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if !isBlankYAML(cur.Bytes()) {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if docSep.MatchString(strings.TrimRight(line, "\r")) {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func isBlankYAML(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

func (l *loader) parseFile(file string, data []byte) {
	for i, d := range splitDocs(data) {
		src := Source{File: file, Index: i}
		l.m.docs = append(l.m.docs, document{src: src, data: d, added: l.configOnly})
		l.parseDoc(src, d)
	}
}

func (l *loader) parseDoc(src Source, y []byte) {
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		l.add(src, "", "", "", fmt.Sprintf("invalid YAML: %v", err))
		return
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		l.add(src, "", "", "", fmt.Sprintf("invalid document: %v", err))
		return
	}
	if tree == nil {
		return
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		l.add(src, "", "", "", fmt.Sprintf("a document must be an object with apiVersion and kind, got %s", jsonTypeName(tree)))
		return
	}
	if obj["kind"] == "List" && obj["apiVersion"] == "v1" {
		l.parseList(src, obj)
		return
	}
	l.parseObject(src, obj, js)
}

// parseList reads kubectl's `kind: List` (what `kubectl get -o yaml`
// prints for more than one object): each item is loaded as a document of
// its own, named by its position in the list.
func (l *loader) parseList(src Source, obj map[string]any) {
	for _, k := range sortedKeys(obj) {
		if !slices.Contains([]string{"apiVersion", "kind", "items", "metadata"}, k) {
			l.add(src, "List", "", k, fmt.Sprintf("unknown field %q (allowed: apiVersion, kind, items, metadata)", k))
		}
	}
	items, ok := obj["items"].([]any)
	if !ok && obj["items"] != nil {
		l.add(src, "List", "", "items", fmt.Sprintf("expected a list, got %s", jsonTypeName(obj["items"])))
		return
	}
	for i, it := range items {
		isrc := src
		isrc.Item = i + 1
		o, ok := it.(map[string]any)
		if !ok {
			l.add(isrc, "", "", "", fmt.Sprintf("a list item must be an object with apiVersion and kind, got %s", jsonTypeName(it)))
			continue
		}
		js, err := json.Marshal(o)
		if err != nil {
			l.add(isrc, "", "", "", err.Error())
			continue
		}
		l.parseObject(isrc, o, js)
	}
}

// parseObject loads one object: its kind's entry in the kinds table says
// which fields it may have and how it enters the Mesh.
func (l *loader) parseObject(src Source, obj map[string]any, js []byte) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		l.add(src, kind, "", "", "apiVersion and kind are required")
		return
	}
	def, ok := lookupKind(apiVersion, kind)
	if !ok {
		l.unknownKind(src, apiVersion, kind, obj)
		return
	}
	if l.refuseNotConfig(src, kind, obj) || (l.skipChecks && kind == "Check") {
		return
	}

	// Metadata first, so every later problem can name the object.
	var meta metav1.ObjectMeta
	metaRaw, _ := json.Marshal(obj["metadata"])
	if obj["metadata"] != nil {
		if err := json.Unmarshal(metaRaw, &meta); err != nil {
			l.add(src, kind, "", joinPath("metadata", typeField(err)), typeErr(err))
			return
		}
	}
	if meta.Namespace == "" && !def.clusterScoped {
		meta.Namespace = "default"
	}
	name := meta.Namespace + "/" + meta.Name
	if def.clusterScoped {
		name = meta.Name
	}
	nprobs := len(l.probs)
	rep := func(field, msg string) { l.add(src, kind, name, field, msg) }
	if meta.Name == "" {
		rep("metadata.name", "required")
	}
	checkGo("metadata", reflect.TypeFor[metav1.ObjectMeta](), obj["metadata"], rep)

	top := def.top
	if top == nil {
		top = []string{"apiVersion", "kind", "metadata", "spec", "status"}
	}
	for _, k := range sortedKeys(obj) {
		if !slices.Contains(top, k) {
			rep(k, fmt.Sprintf("unknown field %q (allowed: %s)", k, strings.Join(top, ", ")))
		}
	}

	key := kind + "/" + name
	if prev, dup := l.m.Sources[key]; dup {
		rep("metadata.name", fmt.Sprintf("duplicate %s %s (first defined in %s)", kind, name, prev))
		return
	}
	l.m.Sources[key] = src

	// Objects with parse problems are not validated further: their spec
	// is incomplete and would only produce follow-on noise.
	defer func() {
		if len(l.probs) > nprobs {
			l.broken[key] = true
		}
	}()
	def.load(l, &doc{src: src, kind: kind, name: name, meta: meta, obj: obj, js: js, rep: rep})
}

// doc is one object being loaded.
type doc struct {
	src  Source
	kind string
	name string // namespace/name, or name for cluster-scoped kinds
	meta metav1.ObjectMeta
	obj  map[string]any
	js   []byte
	rep  report
}

// loadIstio decodes an Istio resource: every served version is normalised
// to the v1 client-go type (their specs are the same protos). newObj adds
// the object to the mesh and returns its spec.
func loadIstio(newObj func(m *Mesh, tm metav1.TypeMeta, meta metav1.ObjectMeta) proto.Message, group string) func(*loader, *doc) {
	return func(l *loader, d *doc) {
		msg := newObj(l.m, istioType(group, d.kind), d.meta)
		spec := d.obj["spec"]
		n := len(l.probs)
		checkProto("spec", msg.ProtoReflect().Descriptor(), spec, d.rep)
		if len(l.probs) == n {
			normalizeDurations("spec", msg.ProtoReflect().Descriptor(), spec, d.rep)
		}
		if len(l.probs) == n && spec != nil {
			specJSON, _ := json.Marshal(spec)
			if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(specJSON, msg); err != nil {
				d.rep("spec", err.Error())
			}
		}
	}
}

// decodeKube checks a Kubernetes object strictly against its Go type and
// decodes it.
func decodeKube[T any](d *doc) (*T, bool) {
	var v T
	checkGo("", reflect.TypeFor[T](), d.obj, d.rep)
	if err := json.Unmarshal(d.js, &v); err != nil {
		d.rep(typeField(err), typeErr(err))
		return nil, false
	}
	return &v, true
}

func loadSecret(l *loader, d *doc) {
	s, ok := decodeKube[corev1.Secret](d)
	if !ok {
		return
	}
	if s.Type != corev1.SecretTypeTLS {
		// Only TLS secrets feed credentialName; others (Opaque, tokens,
		// docker config) cannot change what meshtls runs.
		delete(l.m.Sources, "Secret/"+d.name)
		l.notice(d.src, d.kind, d.name, fmt.Sprintf("skipped: type %q is not kubernetes.io/tls, the only Secret type meshtls reads (for credentialName)", s.Type))
		return
	}
	s.ObjectMeta = d.meta
	s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	l.m.Secrets = append(l.m.Secrets, s)
}

func loadWorkload(l *loader, d *doc) {
	var doc struct {
		Spec workloadSpec `json:"spec"`
	}
	if !l.decodeOurs(d.obj, d.js, &doc, d.rep) {
		return
	}
	l.addWorkload(d.src, d.meta, &doc.Spec, d.rep)
}

func loadCheck(l *loader, d *doc) {
	var doc struct {
		Spec checkSpec `json:"spec"`
	}
	if !l.decodeOurs(d.obj, d.js, &doc, d.rep) {
		return
	}
	l.addCheck(d.src, d.meta, &doc.Spec)
}

// istioType is the v1 TypeMeta every served version is normalised to.
func istioType(group, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: group + ".istio.io/v1", Kind: kind}
}

// decodeOurs checks and decodes one of our kinds strictly.
func (l *loader) decodeOurs(obj map[string]any, js []byte, into any, rep report) bool {
	checkGo("spec", reflect.TypeOf(into).Elem().Field(0).Type, obj["spec"], rep)
	// apiVersion, kind and metadata are read separately; decode spec only.
	var only struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(js, &only); err != nil {
		rep("spec", typeErr(err))
		return false
	}
	if len(only.Spec) == 0 || string(only.Spec) == "null" {
		return true
	}
	d := json.NewDecoder(bytes.NewReader([]byte(`{"spec":` + string(only.Spec) + `}`)))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		var ue *json.UnmarshalTypeError
		if errors.As(err, &ue) {
			rep(ue.Field, typeErr(err))
		} else if !strings.Contains(err.Error(), "unknown field") { // already reported with its path
			rep("spec", typeErr(err))
		}
		return false
	}
	return true
}

// typeErr words encoding/json's type errors for people.
func typeErr(err error) string {
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) {
		msg := fmt.Sprintf("expected %s, got %s", ue.Type, ue.Value)
		if ue.Value == "bool" && ue.Type.Kind() == reflect.String {
			msg += " (quote it: YAML reads y, n, yes, no, on, off, true, false as booleans)"
		}
		return msg
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// typeField is the JSON path encoding/json gives for a type error.
func typeField(err error) string {
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) {
		return ue.Field
	}
	return ""
}

type workloadSpec struct {
	Sidecar        *bool              `json:"sidecar,omitempty"`
	Gateway        bool               `json:"gateway,omitempty"`
	ServiceAccount string             `json:"serviceAccount,omitempty"`
	Hostnames      []string           `json:"hostnames,omitempty"`
	External       bool               `json:"external,omitempty"`
	Addresses      []string           `json:"addresses,omitempty"`
	AppCA          string             `json:"appCA,omitempty"`
	Ports          []workloadPortSpec `json:"ports,omitempty"`
}

type workloadPortSpec struct {
	Name        string `json:"name,omitempty"`
	Port        uint32 `json:"port,omitempty"`
	AppProtocol string `json:"appProtocol,omitempty"`
	TLS         bool   `json:"tls,omitempty"`
	ServerFirst bool   `json:"serverFirst,omitempty"`
}

type checkSpec struct {
	From        string        `json:"from,omitempty"`
	To          string        `json:"to,omitempty"`
	Via         string        `json:"via,omitempty"`
	Resolve     string        `json:"resolve,omitempty"`
	ServerFirst bool          `json:"serverFirst,omitempty"`
	TLS         *checkTLSSpec `json:"tls,omitempty"`
	Expect      *expectSpec   `json:"expect,omitempty"`
}

type checkTLSSpec struct {
	SNI        *string  `json:"sni,omitempty"` // nil: omitted; "": no SNI
	CA         []string `json:"ca,omitempty"`
	ClientCert string   `json:"clientCert,omitempty"`
	ClientURI  string   `json:"clientURI,omitempty"`
	ClientDNS  string   `json:"clientDNS,omitempty"`
	MinVersion string   `json:"minVersion,omitempty"`
	MaxVersion string   `json:"maxVersion,omitempty"`
	ALPN       []string `json:"alpn,omitempty"`
	Ciphers    []string `json:"cipherSuites,omitempty"`
}

type expectSpec struct {
	Result   outcome.Result  `json:"result,omitempty"`
	Wire     []outcome.Wire  `json:"wire,omitempty"`
	Peer     string          `json:"peer,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Hops     []hopExpectSpec `json:"hops,omitempty"`
	ServedBy string          `json:"servedBy,omitempty"`
}

type hopExpectSpec struct {
	TLSVersion string   `json:"tlsVersion,omitempty"`
	SNI        string   `json:"sni,omitempty"`
	ALPN       []string `json:"alpn,omitempty"`
}

// DefaultCheckCAs are the CAs a check's client trusts unless told otherwise:
// public too, as a curl trusts its OS roots.
var DefaultCheckCAs = []string{"ingress", "app", "public"}

func (l *loader) addWorkload(src Source, meta metav1.ObjectMeta, s *workloadSpec, rep report) {
	w := &Workload{
		Name:           meta.Name,
		Namespace:      meta.Namespace,
		Labels:         meta.Labels,
		Sidecar:        s.Sidecar == nil || *s.Sidecar,
		Gateway:        s.Gateway,
		ServiceAccount: s.ServiceAccount,
		Hostnames:      s.Hostnames,
		External:       s.External,
		AppCA:          s.AppCA,
		Source:         src,
		Kind:           "Workload",
	}
	if w.Sidecar && !w.Gateway {
		w.Capture = l.captureAnnotations(meta.Annotations, "metadata.annotations", rep)
	}
	if w.ServiceAccount == "" {
		w.ServiceAccount = w.Name
	}
	if len(w.Labels) == 0 {
		// Something must select it: the implied Service's selector.
		w.Labels = map[string]string{"app": w.Name}
	}
	for _, p := range s.Ports {
		w.Ports = append(w.Ports, WorkloadPort(p))
	}
	for i, a := range s.Addresses {
		ip, err := netip.ParseAddr(a)
		switch {
		case !w.External:
			rep(fmt.Sprintf("spec.addresses[%d]", i), "only an external workload (external: true) stands in for an address outside the cluster")
		case err != nil || !ip.Is4():
			rep(fmt.Sprintf("spec.addresses[%d]", i), fmt.Sprintf("%q is not an IPv4 address", a))
		case ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast():
			rep(fmt.Sprintf("spec.addresses[%d]", i), fmt.Sprintf("%s cannot stand for a server (loopback, unspecified or multicast)", ip))
		default:
			w.Addresses = append(w.Addresses, ip)
		}
	}
	l.m.Workloads = append(l.m.Workloads, w)
}

func (l *loader) addCheck(src Source, meta metav1.ObjectMeta, s *checkSpec) {
	c := &Check{Name: meta.Name, Namespace: meta.Namespace, From: s.From, To: s.To, Via: s.Via, Resolve: s.Resolve, ServerFirst: s.ServerFirst, Source: src}
	if t := s.TLS; t != nil {
		c.TLS = &CheckTLS{SNI: t.SNI, CA: t.CA, ClientCert: t.ClientCert, ClientURI: t.ClientURI, ClientDNS: t.ClientDNS,
			MinVersion: t.MinVersion, MaxVersion: t.MaxVersion, ALPN: t.ALPN, Ciphers: t.Ciphers}
		if len(c.TLS.CA) == 0 {
			c.TLS.CA = slices.Clone(DefaultCheckCAs)
		}
	}
	if s.Expect != nil {
		c.Expect = &Expect{Result: s.Expect.Result, Wire: s.Expect.Wire, Peer: s.Expect.Peer, Reason: s.Expect.Reason, ServedBy: s.Expect.ServedBy}
		for _, h := range s.Expect.Hops {
			c.Expect.Hops = append(c.Expect.Hops, HopExpect(h))
		}
	}
	l.m.Checks = append(l.m.Checks, c)
}

// finish adds implied Services, resolves target ports, validates, and
// returns the Mesh or every problem found.
func (l *loader) finish() (*Mesh, error) {
	m := l.m
	l.kubeWorkloads()
	for _, w := range m.Workloads {
		if w.Kind != "Workload" || w.Gateway || w.External {
			continue // gateways and external servers get no implied Service
		}
		if _, given := m.Sources["Service/"+w.ID()]; given || l.selectedByGiven(w) {
			continue
		}
		s := &Service{Name: w.Name, Namespace: w.Namespace, Selector: w.Labels, Implied: true, Source: w.Source}
		for _, p := range w.Ports {
			s.Ports = append(s.Ports, ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.Port, AppProtocol: p.AppProtocol})
		}
		m.Services = append(m.Services, s)
		m.Sources["Service/"+w.ID()] = w.Source
	}
	l.resolveEndpoints()
	for _, s := range m.Services {
		targets, ok := l.targets[s]
		if !ok || s.Manual {
			continue // a selector-less Service's target ports are its endpoints'
		}
		for i := range s.Ports {
			l.resolveTarget(s, i, targets[i])
		}
	}
	l.kubeServicePorts()
	l.validate()
	if len(l.probs) > 0 {
		return nil, &ValidationError{Problems: l.probs}
	}
	l.notices()
	l.networkPolicyNotices()
	slices.SortStableFunc(m.Notices, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Index, b.Source.Index), cmp.Compare(a.Source.Item, b.Source.Item))
	})
	m.sortByIstioOrder() // after validation, whose problems stay in file order
	l.gatewayWarnings()
	return m, nil
}

// selectedByGiven reports whether a Service given in the bundle selects w:
// such a workload is reached through it, as in Kubernetes, and gets no
// implied Service of its own.
func (l *loader) selectedByGiven(w *Workload) bool {
	for _, s := range l.m.Services {
		if !s.Implied && s.Namespace == w.Namespace && len(s.Selector) > 0 && labelsMatch(s.Selector, w.Labels) {
			return true
		}
	}
	return false
}

// resolveTarget sets a Service port's numeric target: omitted means the
// port itself, a name is looked up among the selected workloads' ports.
func (l *loader) resolveTarget(s *Service, i int, t intstr.IntOrString) {
	p := &s.Ports[i]
	switch {
	case t.Type == intstr.Int && t.IntVal == 0:
		p.TargetPort = p.Port
	case t.Type == intstr.Int:
		if t.IntVal < 0 || t.IntVal > 65535 {
			l.add(s.Source, "Service", s.Namespace+"/"+s.Name, fmt.Sprintf("spec.ports[%d].targetPort", i), fmt.Sprintf("must be 1-65535, got %d", t.IntVal))
			return
		}
		p.TargetPort = uint32(t.IntVal)
	default:
		for _, w := range l.m.Endpoints(s) {
			for _, wp := range w.Ports {
				if wp.Name == t.StrVal {
					p.TargetPort = wp.Port
					return
				}
			}
		}
		l.add(s.Source, "Service", s.Namespace+"/"+s.Name, fmt.Sprintf("spec.ports[%d].targetPort", i),
			fmt.Sprintf("named port %q is not a port name of any workload the service selects", t.StrVal))
	}
}

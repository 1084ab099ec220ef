package mesh

import (
	"fmt"

	networkingapi "istio.io/api/networking/v1alpha3"
)

// Notices: fields meshtls accepts but does not translate, because they
// cannot change TLS or whether a call gets through in a meshtls run. Each is
// reported once per resource and field, and the bundle stays valid. Every
// other Istio field is either translated to its Envoy equivalent or refused
// with an error (the translator's job); nothing is silently dropped.
//
// The rule: a field that can change TLS or reachability is modelled or is an
// error; a field that cannot and is not translated gets a notice naming it.

// noticeReason says why a field is accepted without translation.
const (
	noLocalities             = "meshtls runs every workload in one locality, so locality-aware load balancing has no effect"
	deprecatedIgnoredByIstio = "deprecated and ignored by Istio itself (use consecutive5xxErrors)"
)

func (l *loader) notices() {
	m := l.m
	for _, dr := range m.DestinationRules {
		key := "DestinationRule/" + dr.Namespace + "/" + dr.Name
		if l.broken[key] {
			continue
		}
		note := func(field, why string) {
			m.Notices = append(m.Notices, Problem{Source: m.Sources[key], Kind: "DestinationRule", Name: dr.Namespace + "/" + dr.Name,
				Field: field, Message: fmt.Sprintf("accepted, not translated: %s", why)})
		}
		policy := func(path string, lb *networkingapi.LoadBalancerSettings, od *networkingapi.OutlierDetection) {
			if lb.GetLocalityLbSetting() != nil {
				note(path+".loadBalancer.localityLbSetting", noLocalities)
			}
			if lb.GetZoneAwareLbSetting() != nil {
				note(path+".loadBalancer.zoneAwareLbSetting", noLocalities)
			}
			//lint:ignore SA1019 reported because Istio ignores the deprecated field
			if od.GetConsecutiveErrors() != 0 {
				note(path+".outlierDetection.consecutiveErrors", deprecatedIgnoredByIstio)
			}
		}
		walk := func(path string, tp *networkingapi.TrafficPolicy) {
			policy(path, tp.GetLoadBalancer(), tp.GetOutlierDetection())
			for i, pl := range tp.GetPortLevelSettings() {
				policy(fmt.Sprintf("%s.portLevelSettings[%d]", path, i), pl.GetLoadBalancer(), pl.GetOutlierDetection())
			}
		}
		walk("spec.trafficPolicy", dr.Spec.GetTrafficPolicy())
		for i, s := range dr.Spec.GetSubsets() {
			walk(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), s.GetTrafficPolicy())
		}
	}
	for _, vs := range m.VirtualServices {
		key := "VirtualService/" + vs.Namespace + "/" + vs.Name
		if l.broken[key] {
			continue
		}
		for i, hr := range vs.Spec.GetHttp() {
			if hr.GetRetries().GetRetryRemoteLocalities().GetValue() {
				m.Notices = append(m.Notices, Problem{Source: m.Sources[key], Kind: "VirtualService", Name: vs.Namespace + "/" + vs.Name,
					Field: fmt.Sprintf("spec.http[%d].retries.retryRemoteLocalities", i), Message: "accepted, not translated: " + noLocalities})
			}
		}
	}
}

package pod

import (
	"net/http"
	"net/http/httptest"
)

type recorded struct {
	code int
	body string
}

func httptestRecorder(h http.Handler, path string) recorded {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return recorded{rec.Code, rec.Body.String()}
}
